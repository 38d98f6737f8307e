"""The archive the verify tests tamper with, and the tampering: built once per test module
by the real job (ten due days: an empty day, a day with a late second part, two days
whose events interleave in the chain, and two not-due days still in hot), copied into
each test's own database and bucket, then changed the way an attacker or an accident
would. Test modules wrap ``build_template`` and ``load_template`` in their fixtures."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from audit_archive.cli import main

# Loaded at collection, before any test moves ARCHIVE_START_DATE: the partitions the
# template's days need exist whichever test of the worker's process runs first.
from audit_archive.definitions import defs
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive.format.jsonl import GzipJsonlWriter, relaxed_line
from audit_archive.format.manifest import PartSummary, build_manifest, manifest_bytes, sign_manifest
from audit_archive.format.merkle import MerkleBuilder
from audit_archive_dev.embedded import Stack
from audit_archive_tests.support.harness import KEY_A, Harness, due_day, point_archive_at

KEY_UNKNOWN = "an-attackers-own-signing-key-0123456789abcdef"

FIRST = due_day(9)
EMPTY = due_day(6)  # no events: an empty part 1
TWO_PARTS = due_day(8)  # late events archived as part 2
INTERLEAVED = (due_day(3), due_day(2))  # their events alternate in the chain
DUE = [due_day(k) for k in range(9, -1, -1)]
NOT_DUE = [due_day(-1), due_day(-2)]


@dataclasses.dataclass
class Template:
    events: list[dict[str, Any]]
    records: list[dict[str, Any]]
    objects: dict[str, bytes]
    seeded: list[dict[str, Any]]  # every event ever chained, so appends continue the chain


def build_template(
    stack: Stack, mongo_client: MongoClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    """The archive every test starts from, built once by the real archive job."""
    with pytest.MonkeyPatch.context() as mp:
        h = point_archive_at(
            stack,
            mongo_client,
            mp,
            f"verifytemplate{uuid.uuid4().hex[:8]}",  # one per module: they run at once
            str(tmp_path_factory.mktemp("verify-template")),
        )
        h.seed({day: 12 for day in DUE if day != EMPTY})
        a, b = (layout.day_bounds(d)[0] + dt.timedelta(hours=23) for d in INTERLEAVED)
        h.append([a, b, a + dt.timedelta(minutes=1), b + dt.timedelta(minutes=1)], gap_rate=0)
        h.seed({day: 8 for day in NOT_DUE})
        for day in DUE:
            assert h.run(day).success, day
        h.append([layout.day_bounds(TWO_PARTS)[0] + dt.timedelta(hours=h_) for h_ in (1, 2, 3)])
        assert h.run(TWO_PARTS).success
        assert [r["part"] for r in h.records(TWO_PARTS)] == [1, 2]
        snapshot = Template(
            events=list(h.events.find({})),
            records=[{k: v for k, v in r.items() if k != "_id"} for r in h.records()],
            objects={key: h.get(key) for key in h.object_keys()},
            seeded=h.seeded,
        )
        mongo_client.drop_database(h.settings.database)
    yield snapshot


def load_template(harness: Harness, template: Template, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """The template archive in this test's database and bucket (uploaded as the archiver
    uploads: with SHA-256 checksums), days from the template's first day."""
    harness.events.insert_many([dict(e) for e in template.events])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    harness.batches.insert_many([{**r, "archivedAt": now} for r in template.records])
    for key, data in template.objects.items():
        put(harness, key, data)
    harness.seeded = [dict(e) for e in template.seeded]
    monkeypatch.setenv("ARCHIVE_START_DATE", str(FIRST))
    return harness


# -- helpers ------------------------------------------------------------------------


def put(h: Harness, key: str, data: bytes, *, checksum: bool = True) -> None:
    """Write an object; with ``checksum`` as the archiver does (x-amz-checksum-sha256)."""
    extra = {}
    if checksum:
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        extra = {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": digest}
    h.s3.put_object(Bucket=h.bucket, Key=key, Body=data, **extra)


def jsonl_key(day: dt.date, part: int = 1) -> str:
    return layout.jsonl_key("audit", day, part)


def manifest_key(day: dt.date, part: int = 1) -> str:
    return layout.manifest_key("audit", day, part)


def verify_json(capsys, *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["verify", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {d["day"]: d["status"] for d in doc["days"]}


def findings(doc: dict[str, Any], day: dt.date) -> list[dict[str, Any]]:
    return next(d["findings"] for d in doc["days"] if d["day"] == str(day))


def clean_statuses() -> dict[str, str]:
    out = {str(d): "valid" for d in DUE}
    out[str(EMPTY)] = "empty"
    return out


def expect(doc: dict[str, Any], changed: dict[dt.date, str]) -> None:
    """Every day clean except ``changed``, which have exactly these statuses."""
    want = {**clean_statuses(), **{str(d): s for d, s in changed.items()}}
    assert statuses(doc) == want


def forge_part(
    h: Harness, day: dt.date, *, key: str | None, rechain: bool, update_record: bool = False
) -> int:
    """Change one event's actor and re-hash it. With ``rechain`` also re-link the rest of
    the part; with ``key`` rebuild and re-sign the manifest (Merkle root, chainEdges,
    counts, sha256) as an attacker holding the signing key could; with
    ``update_record`` also rewrite the batch record. Returns the forged event's seq."""
    events = h.part_events(day)
    victim = 3
    events[victim]["actor"]["id"] = "mallory"
    events[victim]["hash"] = event_hash(events[victim])
    if rechain:
        for i in range(victim + 1, len(events)):
            events[i]["prevHash"] = events[i - 1]["hash"]
            events[i]["hash"] = event_hash(events[i])
    summary, path = _write_events(h, day, events, [0, len(events) - 1], "forged.jsonl.gz")
    put(h, jsonl_key(day), path.read_bytes())
    if key is None:
        return events[victim]["seq"]
    data = manifest_bytes(sign_manifest(build_manifest(summary), key))
    put(h, manifest_key(day), data)
    if update_record:
        h.batches.update_one(
            {"day": str(day), "part": 1},
            {
                "$set": {
                    "jsonlSha256": summary.jsonl_sha256,
                    "manifestSha256": hashlib.sha256(data).hexdigest(),
                    "bytesCompressed": summary.jsonl_bytes,
                    "bytesUncompressed": summary.jsonl_bytes_uncompressed,
                    "merkleRoot": summary.merkle_root,
                    "chainEdges": summary.chain_edges,
                }
            },
        )
    return events[victim]["seq"]


def resign_with_events_object(h: Harness, day: dt.date, data: bytes) -> None:
    """Replace a part's events object and, as an attacker holding the key and the
    records would, its manifest's sha256 and size (re-signed) and its batch record."""
    put(h, jsonl_key(day), data)
    manifest = h.manifest(day)
    manifest["jsonl"] = {
        **manifest["jsonl"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    signed = manifest_bytes(sign_manifest(manifest, KEY_A))
    put(h, manifest_key(day), signed)
    h.batches.update_one(
        {"day": str(day), "part": 1},
        {
            "$set": {
                "jsonlSha256": hashlib.sha256(data).hexdigest(),
                "bytesCompressed": len(data),
                "manifestSha256": hashlib.sha256(signed).hexdigest(),
            }
        },
    )


def write_part(h: Harness, day: dt.date, events: list[dict[str, Any]]) -> None:
    """Write ``events`` as the day's part 1 as an attacker holding the key and the
    records would: objects, a re-signed manifest consistent with its content (chainEdges
    where a link does not hold, as the verifier recomputes them) and the batch record."""
    edge_at = {0, len(events) - 1}
    for i in range(1, len(events)):
        if events[i]["prevHash"] != events[i - 1]["hash"]:
            edge_at |= {i - 1, i}
    summary, path = _write_events(h, day, events, sorted(edge_at), "written.jsonl.gz")
    data = manifest_bytes(sign_manifest(build_manifest(summary), KEY_A))
    put(h, jsonl_key(day), path.read_bytes())
    put(h, manifest_key(day), data)
    h.batches.update_one(
        {"day": str(day), "part": 1},
        {
            "$set": {
                "eventCount": len(events),
                "startSeq": summary.start_seq,
                "endSeq": summary.end_seq,
                "jsonlSha256": summary.jsonl_sha256,
                "manifestSha256": hashlib.sha256(data).hexdigest(),
                "bytesCompressed": summary.jsonl_bytes,
                "bytesUncompressed": summary.jsonl_bytes_uncompressed,
                "merkleRoot": summary.merkle_root,
                "chainEdges": summary.chain_edges,
            }
        },
    )


def delete_object(h: Harness, key: str) -> None:
    h.s3.delete_object(Bucket=h.bucket, Key=key)


def put_multipart(h: Harness, key: str, data: bytes) -> str:
    """The same bytes as a one-part multipart upload: what the archiver did for an
    object larger than AUDIT_COLD_PART_SIZE_MIB at the time. Returns the server's
    checksum (a composite; moto writes it without the "-<parts>" suffix)."""
    upload = h.s3.create_multipart_upload(Bucket=h.bucket, Key=key, ChecksumAlgorithm="SHA256")
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    part = h.s3.upload_part(
        Bucket=h.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=data,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=digest,
    )
    h.s3.complete_multipart_upload(
        Bucket=h.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": digest}]
        },
    )
    return h.s3.head_object(Bucket=h.bucket, Key=key, ChecksumMode="ENABLED")["ChecksumSHA256"]


def verify_job_result(**config: Any):
    job = defs.resolve_job_def("audit_verify_job")
    run_config = {"ops": {"verify_archive": {"config": config}}} if config else None
    return job.execute_in_process(run_config=run_config, raise_on_error=False)


def _write_events(
    h: Harness, day: dt.date, events: list[dict[str, Any]], edge_at: list[int], name: str
) -> tuple[PartSummary, Path]:
    """``events`` written as a JSONL.gz in the work directory, and the summary of the
    day's part 1 holding them, with the events at ``edge_at`` as its chainEdges."""
    path = Path(h.env["AUDIT_WORK_DIR"]) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    merkle = MerkleBuilder()
    with GzipJsonlWriter(path) as writer:
        for e in events:
            writer.write_line(relaxed_line(e))
            merkle.add(e["hash"])
        written = writer.close()
    edges = [
        {"seq": events[i]["seq"], "prevHash": events[i]["prevHash"], "hash": events[i]["hash"]}
        for i in edge_at
    ]
    summary = PartSummary(
        day=str(day),
        part=1,
        event_count=len(events),
        start_seq=events[0]["seq"],
        end_seq=events[-1]["seq"],
        first_prev_hash=events[0]["prevHash"],
        last_hash=events[-1]["hash"],
        chain_edges=edges,
        merkle_root=merkle.root(),
        jsonl_key=jsonl_key(day),
        jsonl_sha256=written.sha256,
        jsonl_bytes=written.bytes,
        jsonl_bytes_uncompressed=written.bytes_uncompressed,
    )
    return summary, path

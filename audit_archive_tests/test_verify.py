"""audit-archive verify / archives and audit_verify_job, against the real servers.

One archive is built per module (ten due days archived by the real job: an empty day, a
day with a late second part, two days whose events interleave in the chain, and two
not-due days still in hot) and copied into each test's own database and bucket. Each
test then tampers with it the way an attacker or an accident would, and checks that
the right day gets the right status, and that the days beside it stay clean.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from audit_archive.audit.verify import PRECEDENCE, Finding, Status, day_status
from audit_archive.cli import main
from audit_archive.cli.verify import ProgressBar
from audit_archive.defs.verify_job import build_verify_job, build_verify_schedule
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive.format.jsonl import GzipJsonlWriter, relaxed_line
from audit_archive.format.manifest import PartSummary, build_manifest, manifest_bytes, sign_manifest
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.settings import DefinitionSettings
from audit_archive_dev.embedded import Stack
from audit_archive_tests.support.harness import KEY_A, KEY_B, Harness, due_day, point_archive_at

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


@pytest.fixture(scope="module")
def template(stack: Stack, mongo_client: MongoClient, tmp_path_factory) -> Iterator[Template]:
    """The archive every test starts from, built once by the real archive job."""
    with pytest.MonkeyPatch.context() as mp:
        h = point_archive_at(
            stack,
            mongo_client,
            mp,
            "verifytemplate",
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


@pytest.fixture
def archive(harness: Harness, template: Template, monkeypatch) -> Harness:
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
    path = Path(h.env["AUDIT_WORK_DIR"]) / "forged.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    merkle = MerkleBuilder()
    with GzipJsonlWriter(path) as writer:
        for e in events:
            writer.write_line(relaxed_line(e))
            merkle.add(e["hash"])
        written = writer.close()
    put(h, jsonl_key(day), path.read_bytes())
    if key is None:
        return events[victim]["seq"]
    edges = [{"seq": e["seq"], "prevHash": e["prevHash"], "hash": e["hash"]} for e in events]
    summary = PartSummary(
        day=str(day),
        part=1,
        event_count=len(events),
        start_seq=events[0]["seq"],
        end_seq=events[-1]["seq"],
        first_prev_hash=events[0]["prevHash"],
        last_hash=events[-1]["hash"],
        chain_edges=[edges[0], edges[-1]],
        merkle_root=merkle.root(),
        jsonl_key=jsonl_key(day),
        jsonl_sha256=written.sha256,
        jsonl_bytes=written.bytes,
        jsonl_bytes_uncompressed=written.bytes_uncompressed,
    )
    data = manifest_bytes(sign_manifest(build_manifest(summary), key))
    put(h, manifest_key(day), data)
    if update_record:
        h.batches.update_one(
            {"day": str(day), "part": 1},
            {
                "$set": {
                    "jsonlSha256": written.sha256,
                    "manifestSha256": hashlib.sha256(data).hexdigest(),
                    "bytesCompressed": written.bytes,
                    "bytesUncompressed": written.bytes_uncompressed,
                    "merkleRoot": summary.merkle_root,
                    "chainEdges": summary.chain_edges,
                }
            },
        )
    return events[victim]["seq"]


# -- the statuses ---------------------------------------------------------------------


def test_precedence_picks_the_most_serious_finding_and_lists_them_all() -> None:
    assert PRECEDENCE == (
        Status.MODIFIED,
        Status.CHAIN_BREAK,
        Status.UNVERIFIABLE,
        Status.ORPHAN,
        Status.MISSING,
        Status.OVERDUE,
    )
    found = [
        Finding(Status.OVERDUE, "a"),
        Finding(Status.ORPHAN, "b"),
        Finding(Status.MISSING, "c"),
    ]
    assert day_status(found, due=True, parts=1, events=3) is Status.ORPHAN
    assert day_status(found[:1], due=True, parts=1, events=3) is Status.OVERDUE
    assert day_status([], due=True, parts=1, events=3) is Status.VALID
    assert day_status([], due=True, parts=1, events=0) is Status.EMPTY
    assert day_status([], due=False, parts=0, events=0) is Status.NOT_DUE


# -- an untouched archive ---------------------------------------------------------------


def test_an_untouched_archive_verifies_clean_in_both_modes(archive: Harness, capsys) -> None:
    code, doc = verify_json(capsys, "--to", str(NOT_DUE[-1]))
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert statuses(doc) == {**clean_statuses(), **{str(d): "not-due" for d in NOT_DUE}}
    s = doc["summary"]
    archived = [r for r in archive.records() if r["eventCount"]]
    hot_chained = [e["seq"] for e in archive.events.find({"hash": {"$type": "string"}})]
    assert s["highestArchivedSeq"] == max(r["endSeq"] for r in archived)
    assert s["oldestHotSeq"] == min(hot_chained)
    assert s["parts"] == len(archive.records()) == 11
    assert s["events"] == sum(r["eventCount"] for r in archived)
    assert s["counts"] == {"valid": 9, "empty": 1, "not-due": 2} and s["findings"] == 0

    code, deep = verify_json(capsys, "--deep")
    assert code == 0, [d for d in deep["days"] if d["findings"]]
    expect(deep, {})
    assert deep["summary"]["bytesRead"] == sum(r["bytesCompressed"] for r in archived)


def test_text_output_has_a_line_per_day_and_the_tier_boundary(archive: Harness, capsys) -> None:
    assert main(["verify"]) == 0
    out = capsys.readouterr().out.splitlines()
    day_lines = [line for line in out if re.match(r"^\d{4}-\d{2}-\d{2}  ", line)]
    assert [line.split()[:2] for line in day_lines] == [
        [str(d), clean_statuses()[str(d)]] for d in DUE
    ]
    assert any(line.startswith("10 days from ") and ": ok" in line for line in out)
    assert any(line.startswith("tier boundary: highestArchivedSeq ") for line in out)


# -- tampering, one way at a time --------------------------------------------------------


@pytest.mark.parametrize("checksum", [False, True], ids=["plain-put", "put-with-new-checksum"])
def test_a_flipped_byte_in_a_jsonl_gz_is_modified(archive: Harness, capsys, checksum) -> None:
    day = due_day(4)
    data = bytearray(archive.get(jsonl_key(day)))
    data[len(data) // 2] ^= 0x01
    put(archive, jsonl_key(day), bytes(data), checksum=checksum)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    assert jsonl_key(day) in findings(doc, day)[0]["message"]

    code, deep = verify_json(capsys, "--deep")
    assert code == 1
    expect(deep, {day: "modified"})
    assert all(jsonl_key(day) in f["message"] for f in findings(deep, day))


def test_an_edited_manifest_field_is_modified(archive: Harness, capsys) -> None:
    day = due_day(5)
    manifest = archive.manifest(day)
    manifest["eventCount"] += 1
    put(archive, manifest_key(day), manifest_bytes(manifest))

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    messages = [f["message"] for f in findings(doc, day)]
    assert any("signature does not verify" in m for m in messages)


def test_a_manifest_resigned_with_an_unknown_key(archive: Harness, capsys) -> None:
    """Re-signed bytes no longer match the batch record: modified, and unverifiable is
    listed too. With the record rewritten to match, it is only unverifiable."""
    day = due_day(1)
    resigned = manifest_bytes(sign_manifest(archive.manifest(day), KEY_UNKNOWN))
    put(archive, manifest_key(day), resigned)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    assert {f["kind"] for f in findings(doc, day)} == {"modified", "unverifiable"}

    archive.batches.update_one(
        {"day": str(day), "part": 1},
        {"$set": {"manifestSha256": hashlib.sha256(resigned).hexdigest()}},
    )
    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "unverifiable"})


def test_a_validly_signed_part_replayed_into_another_day_is_modified(
    archive: Harness, capsys
) -> None:
    source, target = due_day(7), due_day(5)
    for key in (jsonl_key, manifest_key):
        put(archive, key(target), archive.get(key(source)))

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {target: "modified"})
    messages = [f["message"] for f in findings(doc, target)]
    assert any(f"says day {source} part 1, but is stored as day {target}" in m for m in messages)


def test_a_day_whose_objects_are_deleted_is_orphan_and_its_neighbours_stay_valid(
    archive: Harness, capsys
) -> None:
    day = due_day(4)
    for key in (jsonl_key(day), manifest_key(day)):
        archive.s3.delete_object(Bucket=archive.bucket, Key=key)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "orphan"})
    assert all("not in the bucket" in f["message"] for f in findings(doc, day))


def test_two_consecutive_deleted_days_are_both_missing(archive: Harness, capsys) -> None:
    gone = [due_day(5), due_day(4)]
    for day in gone:
        for key in (jsonl_key(day), manifest_key(day)):
            archive.s3.delete_object(Bucket=archive.bucket, Key=key)
        archive.batches.delete_many({"day": str(day)})

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        # Each missing day is listed; the days beside them (one of them empty) stay clean.
        expect(doc, dict.fromkeys(gone, "missing"))


def test_a_deleted_batch_record_leaves_orphan_objects(archive: Harness, capsys) -> None:
    day = due_day(7)
    archive.batches.delete_one({"day": str(day), "part": 1})

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "orphan"})
    assert {f["message"] for f in findings(doc, day)} == {
        f"{manifest_key(day)} is named by no batch record",
        f"{jsonl_key(day)} is named by no batch record",
    }


def test_a_stray_object_in_a_day_folder_is_orphan(archive: Harness, capsys) -> None:
    day = due_day(2)
    put(archive, f"audit/day={day}/part-0001.jsonl.gz.bak", b"left behind")

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "orphan"})
    assert "part-0001.jsonl.gz.bak" in findings(doc, day)[0]["message"]


def test_a_forged_event_rehashed_without_the_key_is_modified(archive: Harness, capsys) -> None:
    day = due_day(4)
    seq = forge_part(archive, day, key=None, rechain=False)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})

    code, deep = verify_json(capsys, "--deep")
    assert code == 1
    expect(deep, {day: "modified"})
    kinds = {f["kind"] for f in findings(deep, day)}
    assert kinds == {"modified", "chain-break"}
    breaks = [f for f in findings(deep, day) if f["kind"] == "chain-break"]
    assert any(seq in f["seqs"] for f in breaks), "the link after the forged event breaks"


def test_an_attacker_with_the_key_is_caught_by_records_and_the_chain(
    archive: Harness, capsys
) -> None:
    """Re-hashed, re-chained, re-rooted and re-signed: the manifest verifies, but the
    batch records disagree, and the next day no longer links to the forged day."""
    day = due_day(5)
    forge_part(archive, day, key=KEY_A, rechain=True)

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        expect(doc, {day: "modified"})  # the break is charged to the modified day only
        kinds = {f["kind"] for f in findings(doc, day)}
        assert kinds == {"modified", "chain-break"}


def test_an_attacker_holding_the_key_and_the_records_still_breaks_the_chain(
    archive: Harness, capsys
) -> None:
    day, next_day = due_day(5), due_day(4)
    forge_part(archive, day, key=KEY_A, rechain=True, update_record=True)

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        # Nothing tells which side of the broken link was altered: both days are named.
        expect(doc, {day: "chain-break", next_day: "chain-break"})


def test_a_forged_hot_event_breaks_the_chain_at_the_tier_boundary(archive: Harness, capsys) -> None:
    oldest = archive.events.find_one({}, sort=[("seq", 1)])
    assert oldest["at"].date() == NOT_DUE[0]
    forged = {**oldest, "prevHash": "e" * 64}
    forged["hash"] = event_hash(forged)
    archive.events.replace_one({"_id": oldest["_id"]}, forged)
    last_before = INTERLEAVED[1]  # its last event is the chain predecessor of the oldest hot

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {last_before: "chain-break"})
    [finding] = findings(doc, last_before)
    assert f"seq {oldest['seq']} (hot)'s prevHash does not match" in finding["message"]

    code, doc = verify_json(capsys, "--to", str(NOT_DUE[-1]))
    assert statuses(doc)[str(NOT_DUE[0])] == "chain-break", "the hot side's day is named too"
    assert statuses(doc)[str(NOT_DUE[1])] == "not-due"


def test_due_events_left_in_hot_are_overdue(archive: Harness, capsys) -> None:
    day = due_day(7)
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=5)])

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "overdue"})
    assert findings(doc, day)[0]["message"].startswith("1 chained event(s) of this due day")


def test_a_due_day_never_archived_is_missing_and_lists_its_overdue_events(
    archive: Harness, capsys
) -> None:
    day = due_day(4)
    archive.s3.delete_object(Bucket=archive.bucket, Key=jsonl_key(day))
    archive.s3.delete_object(Bucket=archive.bucket, Key=manifest_key(day))
    archive.batches.delete_many({"day": str(day)})
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=h) for h in (1, 2)])

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "missing"})
    assert [f["kind"] for f in findings(doc, day)] == ["missing", "overdue"]


# -- key rotation ------------------------------------------------------------------------


def test_key_rotation_keeps_old_days_valid_until_the_old_key_is_dropped(
    archive: Harness, capsys, monkeypatch
) -> None:
    day = due_day(7)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", KEY_B)
    monkeypatch.setenv("AUDIT_SIGNING_KEYS_PREVIOUS", KEY_A)
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=h) for h in (6, 7)])
    assert archive.run(day).success
    assert (
        archive.manifest(day, 2)["signing"]["keyId"] != archive.manifest(day, 1)["signing"]["keyId"]
    )

    code, doc = verify_json(capsys)
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    expect(doc, {})

    monkeypatch.delenv("AUDIT_SIGNING_KEYS_PREVIOUS")
    code, doc = verify_json(capsys)
    assert code == 1
    # Every day has a part signed with A: unverifiable, never modified.
    assert set(statuses(doc).values()) == {"unverifiable"}
    assert all({f["kind"] for f in d["findings"]} == {"unverifiable"} for d in doc["days"])
    part2 = [f for f in findings(doc, day) if f.get("part") == 2]
    assert part2 == [], "part 2, signed with B, verifies"


# -- the commands' surface -----------------------------------------------------------------


def test_exit_code_2_for_usage_and_configuration_errors(
    archive: Harness, capsys, monkeypatch
) -> None:
    assert main(["verify", "--from", "yesterday"]) == 2
    assert main(["verify", "--from", str(FIRST - dt.timedelta(days=1))]) == 2
    assert "before ARCHIVE_START_DATE" in capsys.readouterr().err
    assert main(["verify", "--from", str(due_day(1)), "--to", str(due_day(2))]) == 2
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "short")
    assert main(["verify"]) == 2
    assert "AUDIT_SIGNING_KEY" in capsys.readouterr().err
    assert main(["archives", "--from", str(due_day(1)), "--to", str(due_day(2))]) == 2


def test_a_range_limits_the_days_and_uses_the_chain_outside_it(archive: Harness, capsys) -> None:
    code, doc = verify_json(capsys, "--from", str(due_day(5)), "--to", str(due_day(3)))
    assert code == 0
    assert statuses(doc) == {str(due_day(k)): "valid" for k in (5, 4, 3)}


def test_deep_draws_a_progress_bar_only_on_a_terminal(
    archive: Harness, capsys, monkeypatch
) -> None:
    assert main(["verify", "--deep"]) == 0
    assert capsys.readouterr().err == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["verify", "--deep"]) == 0
    drawn = terminal.getvalue()
    assert "\rreading events [" in drawn and "10/10 parts" in drawn and drawn.endswith("\n")


def test_progress_bar_shows_bytes_and_parts() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=10)
    bar(512 * 1024, 2**20, 1, 2)
    bar(2**20, 2**20, 2, 2)
    bar.close()
    assert "[#####.....]  50%  0.5/1.0 MiB  1/2 parts" in out.getvalue()
    assert "[##########] 100%  1.0/1.0 MiB  2/2 parts\n" in out.getvalue()


def test_archives_lists_batches_newest_first(archive: Harness, capsys) -> None:
    assert main(["archives"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "day", "part", "archived", "at", "seq", "range", "events", "size", "ratio", "manifest"
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:] if re.match(r"^\d{4}-", line)]
    records = archive.records()
    assert len(rows) == len(records) == 11
    assert [(r[0], int(r[1])) for r in rows] == sorted(
        ((r["day"], r["part"]) for r in records), reverse=True
    )
    by_key = {(r["day"], r["part"]): r for r in records}
    for row in rows:
        rec = by_key[(row[0], int(row[1]))]
        assert row[-1] == rec["manifestSha256"][:12]
        if rec["eventCount"]:
            assert row[4] == f"{rec['startSeq']}-{rec['endSeq']}"
            assert int(row[5]) == rec["eventCount"]
            assert row[8].endswith("x")
        else:
            assert row[4] == "-" and row[8] == "-"
    assert lines[-1].startswith("11 parts of 10 days: ")

    assert main(["archives", "--json", "--from", str(TWO_PARTS), "--to", str(TWO_PARTS)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(b["day"], b["part"]) for b in doc["batches"]] == [
        (str(TWO_PARTS), 2),
        (str(TWO_PARTS), 1),
    ]
    assert doc["summary"]["events"] == sum(r["eventCount"] for r in archive.records(TWO_PARTS))


# -- Dagster ---------------------------------------------------------------------------------


def _verify_job_result(**config: Any):
    from audit_archive.definitions import defs

    job = defs.resolve_job_def("audit_verify_job")
    run_config = {"ops": {"verify_archive": {"config": config}}} if config else None
    return job.execute_in_process(run_config=run_config, raise_on_error=False)


def test_verify_job_succeeds_on_a_clean_archive_and_fails_on_a_finding(
    archive: Harness,
) -> None:
    clean = _verify_job_result()
    assert clean.success
    [materialized] = [e for e in clean.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = materialized.event_specific_data.metadata
    assert meta["days"].value == 10 and meta["findings"].value == 0
    assert meta["days_valid"].value == 9 and meta["days_empty"].value == 1

    day = due_day(4)
    archive.s3.delete_object(Bucket=archive.bucket, Key=manifest_key(day))
    failed = _verify_job_result(deep=True)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error.message
    assert f"{day} orphan" in error
    failure_meta = failure.event_specific_data.user_failure_data.metadata
    assert str(day) in failure_meta["findings_by_day"].value
    assert failure_meta["report"].value["days"][0]["day"] == str(day)


def test_verify_schedule_is_weekly_and_on_only_when_archive_enabled() -> None:
    from dagster import DefaultScheduleStatus, build_schedule_context

    job = build_verify_job()
    on = build_verify_schedule(job, DefinitionSettings(dt.date(2024, 1, 1), 3, True, 90))
    off = build_verify_schedule(job, DefinitionSettings(dt.date(2024, 1, 1), 3, False, 90))
    assert on.default_status is DefaultScheduleStatus.RUNNING
    assert off.default_status is DefaultScheduleStatus.STOPPED
    assert on.cron_schedule == "0 5 * * 0"
    when = dt.datetime(2026, 9, 6, 5, tzinfo=dt.UTC)
    [request] = on.evaluate_tick(build_schedule_context(scheduled_execution_time=when)).run_requests
    assert request.run_key == "verify:2026-09-06"


# -- users' data ------------------------------------------------------------------------------


def _seed_seqs(h: Harness, days: list[dt.date], first_seq: int, width: str) -> None:
    """Chained events over ``days`` from ``first_seq``: every seq an Int64 ("int64"), or
    plain ints crossing 2^31, which the driver stores as Int32 below it and Int64 above
    ("crossing")."""
    from bson.int64 import Int64

    from audit_archive_dev import seed

    ats = [at for day in days for at in seed.day_times(day, 6, h.rng)]
    docs = list(seed.chain(ats, first_seq=first_seq, rng=h.rng, gap_rate=0))
    if width == "int64":
        for doc in docs:
            doc["seq"] = Int64(doc["seq"])  # the hash scheme treats both widths alike
    h.events.insert_many(docs)
    h.seeded += docs


@pytest.mark.parametrize(
    ("width", "first_seq"), [("int64", 1), ("crossing", 2**31 - 7)], ids=["int64", "crossing"]
)
def test_int64_seqs_verify_clean(harness: Harness, capsys, monkeypatch, width, first_seq) -> None:
    """seq stored as NumberLong (counters, $inc on a long) is a seq like any other."""
    days = [due_day(1), due_day(0)]
    _seed_seqs(harness, days, first_seq, width)
    monkeypatch.setenv("ARCHIVE_START_DATE", str(days[0]))
    types = {type(d["seq"]).__name__ for d in harness.events.find({})}
    assert types == ({"Int64"} if width == "int64" else {"int", "Int64"})
    for day in days:
        assert harness.run(day).success
    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 0, [d for d in doc["days"] if d["findings"]]
        assert set(statuses(doc).values()) == {"valid"}


# -- objects rewritten with identical bytes ---------------------------------------------------


def _rewrite_events_objects(h: Harness, template: Template, **put_args: Any) -> list[str]:
    keys = [k for k in template.objects if k.endswith(".jsonl.gz")]
    for key in keys:
        put(h, key, template.objects[key], **put_args)
    return keys


def test_events_objects_rewritten_without_checksums_are_read_and_stay_valid(
    archive: Harness, template: Template, capsys
) -> None:
    """A bucket copied by a tool that keeps no checksum: the server has none for these
    objects (it has for the manifests), so verify reads them and finds them unchanged."""
    keys = _rewrite_events_objects(archive, template, checksum=False)
    code, doc = verify_json(capsys)
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    expect(doc, {})
    read = doc["summary"]["objectsRead"]
    assert read["objects"] == len(keys) == 10
    assert read["bytes"] == sum(len(template.objects[k]) for k in keys)
    assert read["reasons"] == {"stored without the SHA-256 checksum the archiver sends": 10}

    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "read 10 events object(s)" in out and "10 stored without the SHA-256" in out


def test_a_server_without_checksums_rewritten_after_archiving_reads_and_decides(
    archive: Harness, template: Template, capsys
) -> None:
    """No object has a checksum (a restore from a backup, a server that keeps none) and
    every object is newer than its record: each is read; only the altered one, with the
    same size, is modified, and without --deep."""
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    archive.batches.update_many({}, {"$set": {"archivedAt": earlier}})
    for key, data in template.objects.items():
        put(archive, key, data, checksum=False)
    day = due_day(4)
    data = bytearray(template.objects[jsonl_key(day)])
    data[len(data) // 2] ^= 0x01
    put(archive, jsonl_key(day), bytes(data), checksum=False)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    messages = [f["message"] for f in findings(doc, day)]
    assert all(jsonl_key(day) in m for m in messages)
    assert any("differ from its manifest's sha256" in m for m in messages)
    assert doc["summary"]["objectsRead"]["reasons"] == {
        "Last-Modified is after the record's archivedAt": 10
    }


def test_verify_exits_0_after_the_dev_ui_s3_restarts_from_its_recording(
    harness: Harness, capsys, monkeypatch, tmp_path: Path
) -> None:
    """`./dev ui` stopped and started again: moto is restarted from its recording, every
    object written anew. The untouched archive still verifies."""
    from audit_archive_dev import s3_persist
    from audit_archive_dev.embedded import create_bucket

    state = tmp_path / "s3-state"
    server, _ = s3_persist.start_persistent_s3(None, state)
    try:
        endpoint = f"http://127.0.0.1:{server.port}"
        create_bucket(endpoint, harness.bucket)
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", endpoint)
        days = [due_day(2), due_day(1), due_day(0)]
        monkeypatch.setenv("ARCHIVE_START_DATE", str(days[0]))
        harness.seed({day: 5 for day in days})
        for day in days:
            assert harness.run(day).success
        assert main(["verify"]) == 0
    finally:
        server.stop()
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    harness.batches.update_many({}, {"$set": {"archivedAt": earlier}})  # archived days ago
    again, snapshot = s3_persist.start_persistent_s3(None, state)
    try:
        assert snapshot.object_count == 6
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", f"http://127.0.0.1:{again.port}")
        capsys.readouterr()
        code, doc = verify_json(capsys)
        assert code == 0, [d for d in doc["days"] if d["findings"]]
        assert set(statuses(doc).values()) == {"valid"}
    finally:
        again.stop()


# -- CloudTrail's lessons ------------------------------------------------------------------


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


@pytest.mark.parametrize("tail", ["second-member", "garbage"])
def test_deep_finds_data_after_the_gzip_member(archive: Harness, capsys, tail: str) -> None:
    """A second gzip member (zcat shows it; a reader stopping at the first does not) or
    bytes appended after the member: the object holds more than its manifest vouches for."""
    day = due_day(4)
    extra = gzip.compress(b'{"seq": 1, "hidden": true}\n') if tail == "second-member" else b"xx"
    resign_with_events_object(archive, day, archive.get(jsonl_key(day)) + extra)

    code, doc = verify_json(capsys, "--deep")
    assert code == 1
    expect(doc, {day: "modified"})
    [finding] = findings(doc, day)
    assert "data after the gzip member" in finding["message"]


def test_a_manifest_copied_into_another_days_folder_is_modified(archive: Harness, capsys) -> None:
    source, target = due_day(7), due_day(5)
    put(archive, manifest_key(target), archive.get(manifest_key(source)))

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        expect(doc, {target: "modified"})
        messages = [f["message"] for f in findings(doc, target)]
        assert any(
            f"says day {source} part 1, but is stored as day {target}" in m for m in messages
        )


def test_three_consecutive_missing_days_are_each_reported(archive: Harness, capsys) -> None:
    gone = [due_day(7), EMPTY, due_day(5)]
    for day in gone:
        for key in (jsonl_key(day), manifest_key(day)):
            archive.s3.delete_object(Bucket=archive.bucket, Key=key)
        archive.batches.delete_many({"day": str(day)})

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, dict.fromkeys(gone, "missing"))
    for day in gone:
        assert [f["message"] for f in findings(doc, day)] == [
            "a due day with neither a batch record nor any object"
        ]


def test_an_event_of_no_day_outside_every_days_seqs_is_named(archive: Harness, capsys) -> None:
    """A chained event without a date `at` belongs to no day, so no run archives it and
    no day's status shows it: verify names it as a finding of the whole archive."""
    from bson import ObjectId

    top = max(archive.seeded, key=lambda d: d["seq"])  # the chain goes on through them
    prev_hash = top["hash"]
    for i, at in enumerate([None, "2026-08-30T12:00:00Z"], 1):
        doc = {"_id": ObjectId(), "seq": top["seq"] + i, "source": "app", "prevHash": prev_hash}
        if at is not None:
            doc["at"] = at
        doc["hash"] = prev_hash = event_hash(doc)
        archive.events.insert_one(doc)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {})
    [finding] = doc["archive"]
    assert finding["message"].startswith("2 chained event(s) in hot belong to no day")
    assert f"seq {top['seq'] + 1}: has no `at`" in finding["message"]
    assert f"seq {top['seq'] + 2}: `at` is not a date" in finding["message"]
    assert doc["summary"]["ok"] is False

    assert main(["verify"]) == 1
    assert "archive: overdue: 2 chained event(s) in hot belong to no day" in capsys.readouterr().out


# -- settings changed since archiving ---------------------------------------------------------


def _delete_object(h: Harness, key: str) -> None:
    h.s3.delete_object(Bucket=h.bucket, Key=key)


def test_raising_the_retention_hides_no_archived_day(archive: Harness, capsys, monkeypatch) -> None:
    """With AUDIT_HOT_RETENTION_DAYS raised by 5, the last five archived days are no
    longer due, but they are archived: verify and audit_verify_job still check them."""
    monkeypatch.setenv("AUDIT_HOT_RETENTION_DAYS", "95")
    day = due_day(2)  # now not due
    _delete_object(archive, jsonl_key(day))

    code, doc = verify_json(capsys)
    assert code == 1
    assert statuses(doc)[str(day)] == "orphan"
    assert doc["summary"]["to"] == str(DUE[-1]), "every day that holds a record is covered"
    for extra in (("--deep",), ("--from", str(day), "--to", str(day))):
        code, doc = verify_json(capsys, *extra)
        assert code == 1 and statuses(doc)[str(day)] == "orphan"
    failed = _verify_job_result()
    assert not failed.success


def test_moving_the_start_date_later_hides_no_archived_day(
    archive: Harness, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("ARCHIVE_START_DATE", str(due_day(3)))
    day = due_day(5)  # archived before the new start date
    _delete_object(archive, manifest_key(day))

    code, doc = verify_json(capsys)
    assert code == 1
    assert doc["summary"]["from"] == str(FIRST)
    assert statuses(doc)[str(day)] == "orphan"
    code, doc = verify_json(capsys, "--from", str(FIRST), "--to", str(due_day(4)))
    assert code == 1 and statuses(doc)[str(day)] == "orphan"
    # Before the first archived day nothing is held: still a usage error, naming --from.
    assert main(["verify", "--from", str(FIRST - dt.timedelta(days=1)), "--to", str(FIRST)]) == 0
    assert main(["verify", "--from", "2000-01-01", "--to", "2000-01-31"]) == 2
    assert "--from 2000-01-01 is before ARCHIVE_START_DATE" in capsys.readouterr().err


def test_the_default_range_with_a_large_retention_names_no_flag(
    harness: Harness, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("AUDIT_HOT_RETENTION_DAYS", "36500")
    assert main(["verify"]) == 0
    captured = capsys.readouterr()
    assert "--to" not in captured.err + captured.out and "--from" not in captured.err + captured.out
    assert "nothing to verify: no day is due yet" in captured.out


def test_verify_to_the_last_representable_day_stops_where_nothing_can_be(
    archive: Harness, capsys
) -> None:
    code, doc = verify_json(capsys, "--to", "9999-12-31")
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert doc["summary"]["requestedTo"] == "9999-12-31"
    assert doc["summary"]["to"] == str(dt.datetime.now(dt.UTC).date())
    assert main(["verify", "--from", "9999-12-31"]) == 2
    assert "--from 9999-12-31 is after every day" in capsys.readouterr().err


# -- a run in progress ----------------------------------------------------------------------


def test_a_day_a_live_run_holds_is_in_progress_not_orphan(archive: Harness, capsys) -> None:
    """Mid-run: the objects are uploaded, the record not yet written, the events still
    in hot. While a live run holds the day's lease that is not a finding."""
    from audit_archive.stores.clients import open_stores

    day = due_day(7)
    record = archive.batches.find_one_and_delete({"day": str(day)})
    assert record is not None
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=3)])  # not purged yet

    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"

    stores = open_stores(archive.settings)
    try:
        lease = stores.hot.acquire_lease(str(day), "run-1234", 60)
        assert lease.owner == "run-1234"
        code, doc = verify_json(capsys)
        assert code == 0, [d for d in doc["days"] if d["findings"]]
        expect(doc, {day: "in-progress"})
        assert doc["summary"]["inProgress"] == [str(day)]
        report = next(d for d in doc["days"] if d["day"] == str(day))
        assert "run-1234" in report["inProgress"]
        assert main(["verify"]) == 0
        out = capsys.readouterr().out
        assert f"{day}  in-progress" in out and "in progress: a run (run-1234" in out

        forged = bytearray(archive.get(jsonl_key(day)))  # a real finding is still one
        forged[len(forged) // 2] ^= 1
        put(archive, jsonl_key(day), bytes(forged))
        code, doc = verify_json(capsys)
        assert code == 1 and statuses(doc)[str(day)] == "modified"

        stores.hot.release_lease(str(day), "run-1234")
    finally:
        stores.close()


# -- keys ---------------------------------------------------------------------------------------


def test_an_auditor_with_only_previous_keys_or_a_key_file_can_verify(
    archive: Harness, capsys, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUDIT_SIGNING_KEY")
    monkeypatch.setenv("AUDIT_SIGNING_KEYS_PREVIOUS", f"{KEY_B}, {KEY_A}")
    assert main(["verify"]) == 0

    monkeypatch.delenv("AUDIT_SIGNING_KEYS_PREVIOUS")
    key_file = tmp_path / "auditor.key"
    key_file.write_text(f"{KEY_A}\n")
    assert main(["verify", "--key-file", str(key_file)]) == 0
    key_file.write_text(f"{KEY_B}\n")
    capsys.readouterr()
    code, doc = verify_json(capsys, "--key-file", str(key_file))
    assert code == 1 and set(statuses(doc).values()) == {"unverifiable"}

    capsys.readouterr()
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert "AUDIT_SIGNING_KEY" in err and "--key-file" in err
    assert main(["verify", "--key-file", str(tmp_path / "absent.key")]) == 2
    assert "--key-file" in capsys.readouterr().err


# -- how objects were uploaded -------------------------------------------------------------------


def _put_multipart(h: Harness, key: str, data: bytes) -> str:
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


def test_an_object_uploaded_in_parts_is_never_taken_for_a_single_put(
    archive: Harness, template: Template, capsys
) -> None:
    """AUDIT_COLD_PART_SIZE_MIB changed since: an object uploaded in parts is as small as
    a single PUT now. Its composite checksum is not its SHA-256, so verify reads it (an
    old record) or trusts the record's jsonlParts, and finds it unchanged."""
    day = due_day(4)
    key = jsonl_key(day)
    checksum = _put_multipart(archive, key, template.objects[key])
    assert (
        checksum.split("-")[0]
        != base64.b64encode(hashlib.sha256(template.objects[key]).digest()).decode()
    )

    code, doc = verify_json(capsys)
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert doc["summary"]["objectsRead"]["reasons"] == {
        "the server's checksum is not the object's SHA-256": 1
    }

    # A record that says how the object was uploaded (jsonlParts, jsonlPartSize and the
    # composite checksum) confirms it from the HEAD alone.
    composite = base64.b64decode(checksum.split("-")[0]).hex()
    size = len(template.objects[key])
    layout_fields = {"jsonlParts": 1, "jsonlPartSize": size, "jsonlCompositeSha256": composite}
    archive.batches.update_one({"day": str(day), "part": 1}, {"$set": layout_fields})
    code, doc = verify_json(capsys)
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert doc["summary"]["objectsRead"]["objects"] == 0

    data = bytearray(template.objects[key])  # the same size, other bytes, in parts
    data[len(data) // 2] ^= 1
    _put_multipart(archive, key, bytes(data))
    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    assert doc["summary"]["objectsRead"]["objects"] == 1


# -- users' data in deep mode ----------------------------------------------------------------------


def test_deep_reads_bson_lines_of_wrapper_lookalike_payloads(
    harness: Harness, capsys, monkeypatch
) -> None:
    """Payloads a Relaxed Extended JSON parser would misread are archived as
    {"bson": ...} lines (SPEC 3); --deep decodes and re-hashes them like any other."""
    from audit_archive_dev import seed
    from audit_archive_tests.support.samples import EVERY_BSON_TYPE, WRAPPER_LOOKALIKES

    day = due_day(0)
    monkeypatch.setenv("ARCHIVE_START_DATE", str(day))
    docs = list(seed.chain(seed.day_times(day, len(WRAPPER_LOOKALIKES) + 1, harness.rng)))
    # (all but a date past year 9999, which the embedded MongoDB server refuses)
    every = {k: v for k, v in EVERY_BSON_TYPE.items() if k != "farDate"}
    for doc, payload in zip(docs, [*WRAPPER_LOOKALIKES, {"all": every}], strict=True):
        doc["meta"] = payload
        doc["hash"] = event_hash(doc)
    for prev, doc in itertools.pairwise(docs):
        doc["prevHash"] = prev["hash"]
        doc["hash"] = event_hash(doc)
    harness.events.insert_many(docs)
    assert harness.run(day).success
    lines = gzip.decompress(harness.get(jsonl_key(day))).splitlines()
    assert any(line.startswith(b'{"bson":') for line in lines)

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 0, [d for d in doc["days"] if d["findings"]]
        assert statuses(doc) == {str(day): "valid"}


# -- races and duplicates ----------------------------------------------------------------------


def test_deep_rechecks_a_break_against_a_day_archived_while_it_runs(
    archive: Harness, capsys
) -> None:
    """Two days interleave in the chain; the later one is archived while verify --deep
    reads the earlier one's events: the events between its links left hot after verify
    looked. That is no break: verify re-checks against the current state."""
    from audit_archive.audit.verify import verify
    from audit_archive.stores.clients import open_stores

    early, late = INTERLEAVED
    events = archive.part_events(late)
    for key in (jsonl_key(late), manifest_key(late)):
        _delete_object(archive, key)
    archive.batches.delete_many({"day": str(late)})
    archive.events.insert_many(events)  # back in hot: not archived yet

    runs = []

    def archive_late_day(*_: int) -> None:
        if not runs:  # the first report: verify has read the records and the listing
            runs.append(archive.run(late))

    stores = open_stores(archive.settings)
    try:
        report = verify(stores, FIRST, DUE[-1], deep=True, progress=archive_late_day)
    finally:
        stores.close()
    assert runs and runs[0].success
    assert archive.records(late), "the day was archived during the verification"
    breaks = [(d.day, str(f)) for d in report.days for f in d.findings if f.kind == "chain-break"]
    assert breaks == []
    by_day = {d.day: d.status for d in report.days}
    assert by_day[str(early)] == "valid"

    code, doc = verify_json(capsys, "--deep")
    assert code == 0, [d for d in doc["days"] if d["findings"]]


def write_part(h: Harness, day: dt.date, events: list[dict[str, Any]]) -> None:
    """Write ``events`` as the day's part 1 as an attacker holding the key and the
    records would: objects, a re-signed manifest consistent with its content (chainEdges
    where a link does not hold, as the verifier recomputes them) and the batch record."""
    path = Path(h.env["AUDIT_WORK_DIR"]) / "written.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    merkle = MerkleBuilder()
    with GzipJsonlWriter(path) as writer:
        for e in events:
            writer.write_line(relaxed_line(e))
            merkle.add(e["hash"])
        written = writer.close()
    edge_at = {0, len(events) - 1}
    for i in range(1, len(events)):
        if events[i]["prevHash"] != events[i - 1]["hash"]:
            edge_at |= {i - 1, i}
    edges = [
        {"seq": events[i]["seq"], "prevHash": events[i]["prevHash"], "hash": events[i]["hash"]}
        for i in sorted(edge_at)
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
                "jsonlSha256": written.sha256,
                "manifestSha256": hashlib.sha256(data).hexdigest(),
                "bytesCompressed": written.bytes,
                "bytesUncompressed": written.bytes_uncompressed,
                "merkleRoot": summary.merkle_root,
                "chainEdges": edges,
            }
        },
    )


def test_a_seq_archived_in_two_days_is_flagged(archive: Harness, capsys) -> None:
    """An event of one day copied, re-dated and re-hashed, into the next day's part:
    the same seq is archived twice. --deep names it on both days."""
    source, target = due_day(5), due_day(4)
    copy = archive.part_events(source)[5]
    copy["at"] = layout.day_bounds(target)[0] + dt.timedelta(minutes=1)
    copy["hash"] = event_hash(copy)
    write_part(archive, target, [copy, *archive.part_events(target)])

    code, doc = verify_json(capsys, "--deep")
    assert code == 1
    for day in (source, target):
        messages = [f["message"] for f in findings(doc, day) if f["kind"] == "chain-break"]
        assert any(f"seq {copy['seq']} is archived in more than one part" in m for m in messages)

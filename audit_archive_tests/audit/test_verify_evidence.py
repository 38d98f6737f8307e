"""verify on users' data and what CloudTrail's users learned: Int64 seqs, {"bson": ...}
lines, objects rewritten with identical bytes or uploaded in parts, data after the gzip
member, manifests copied between days, missing days, events of no day, a seq archived
twice, and a day archived while verify runs."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.verify_archive import (
    DUE,
    EMPTY,
    FIRST,
    INTERLEAVED,
    Template,
    delete_object,
    expect,
    findings,
    jsonl_key,
    manifest_key,
    put,
    put_multipart,
    resign_with_events_object,
    statuses,
    verify_json,
    write_part,
)

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
    from audit_archive_dev.embedded import create_bucket, s3_client

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
        s3 = s3_client(endpoint)
        listed = s3.list_objects_v2(Bucket=harness.bucket)["Contents"]
        held = {o["Key"]: s3.get_object(Bucket=harness.bucket, Key=o["Key"])["Body"].read()
                for o in listed}  # fmt: skip
    finally:
        server.stop()
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    harness.batches.update_many({}, {"$set": {"archivedAt": earlier}})  # archived days ago
    again, snapshot = s3_persist.start_persistent_s3(None, state)
    try:
        # Three days' objects and the start-up probe's (written once; the probe's refused
        # writes are in the recording too, and must not be replayed as accepted).
        assert layout.probe_key(harness.settings.cold_prefix) in held and len(held) == 7
        restored = {k: o.body for k, o in snapshot.buckets[harness.bucket].items()}
        assert restored == held, "the restarted S3 holds what the first one held"
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", f"http://127.0.0.1:{again.port}")
        capsys.readouterr()
        code, doc = verify_json(capsys)
        assert code == 0, [d for d in doc["days"] if d["findings"]]
        assert set(statuses(doc).values()) == {"valid"}
    finally:
        again.stop()


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


# -- how objects were uploaded -------------------------------------------------------------------


def test_an_object_uploaded_in_parts_is_never_taken_for_a_single_put(
    archive: Harness, template: Template, capsys
) -> None:
    """AUDIT_COLD_PART_SIZE_MIB changed since: an object uploaded in parts is as small as
    a single PUT now. Its composite checksum is not its SHA-256, so verify reads it (an
    old record) or trusts the record's jsonlParts, and finds it unchanged."""
    day = due_day(4)
    key = jsonl_key(day)
    checksum = put_multipart(archive, key, template.objects[key])
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
    put_multipart(archive, key, bytes(data))
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
        delete_object(archive, key)
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
    assert by_day[early] == "valid"

    code, doc = verify_json(capsys, "--deep")
    assert code == 0, [d for d in doc["days"] if d["findings"]]


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

"""audit_archive_job against real servers: what one day's run must do, and must not."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json

import pytest

from audit_archive.archive import neighbours
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive_dev import seed
from audit_archive_tests.support.harness import KEY_A, Harness, due_day
from audit_archive_tests.support.reliability import failure_messages, step_events


def test_a_due_day_moves_to_cold_storage_and_leaves_hot(harness: Harness) -> None:
    day, neighbour = due_day(3), due_day(2)
    seeded = harness.seed({day: 120, neighbour: 80})
    unchained = {
        "_id": "unchained-1",
        "seq": 10_000,
        "at": layout.day_bounds(day)[0] + dt.timedelta(hours=1),
    }
    harness.events.insert_one(unchained)

    result = harness.run(day)

    assert result.success, failure_messages(result)
    day_events = sorted((e for e in seeded if e["at"].date() == day), key=lambda e: e["seq"])
    archived = harness.part_events(day)
    assert [e["_id"] for e in archived] == [e["_id"] for e in day_events]
    assert all(event_hash(e) == e["hash"] for e in archived)
    manifest = harness.manifest(day)
    assert verify_signature(manifest, [KEY_A]) is SignatureStatus.VALID
    assert manifest["eventCount"] == 120
    assert (
        manifest["startSeq"] == day_events[0]["seq"] and manifest["endSeq"] == day_events[-1]["seq"]
    )
    assert manifest["firstPrevHash"] == day_events[0]["prevHash"]
    assert manifest["lastHash"] == day_events[-1]["hash"]
    [record] = harness.records(day)
    assert record["jsonlSha256"] == manifest["jsonl"]["sha256"]
    assert (
        record["manifestSha256"] == hashlib.sha256(harness.get(record["manifestKey"])).hexdigest()
    )
    assert record["runId"] == result.run_id
    hot = harness.hot_seqs()
    assert not hot & {e["seq"] for e in day_events}, "archived events must leave hot"
    assert {e["seq"] for e in seeded if e["at"].date() == neighbour} <= hot, "other days stay"
    assert harness.events.find_one({"_id": "unchained-1"}) is not None, "unchained events stay"
    harness.assert_invariant(now=layout.day_bounds(day)[1] + dt.timedelta(days=90))


def test_objects_follow_the_key_layout_and_gzip_is_deterministic(harness: Harness) -> None:
    day = due_day(1)
    harness.seed({day: 30})
    assert harness.run(day).success
    assert harness.object_keys() == [
        f"audit/day={day}/part-0001.jsonl.gz",
        f"audit/day={day}/part-0001.manifest.json",
    ]
    raw = harness.get(f"audit/day={day}/part-0001.jsonl.gz")
    assert raw[:4] == b"\x1f\x8b\x08\x00", "gzip, deflate, no FNAME flag"
    assert raw[4:8] == b"\x00\x00\x00\x00", "header mtime 0"
    lines = gzip.decompress(raw).decode().split("\n")
    assert lines[-1] == "" and len(lines) == 31, "one event per \\n-terminated line"


def test_rerunning_a_finished_day_changes_nothing(harness: Harness) -> None:
    day = due_day(1)
    harness.seed({day: 40})
    assert harness.run(day).success
    before = (harness.records(), {k: harness.get(k) for k in harness.object_keys()})

    again = harness.run(day)

    assert again.success
    assert set(step_events(again, "STEP_SKIPPED")) == {
        "to_jsonl_gz",
        "sign_manifest",
        "upload_and_confirm",
        "record_batch",
        "purge_hot",
    }
    assert (harness.records(), {k: harness.get(k) for k in harness.object_keys()}) == before


def test_a_due_day_without_events_gets_an_empty_manifest_and_record(harness: Harness) -> None:
    day = due_day(4)
    harness.seed({due_day(5): 10, due_day(3): 10})
    assert harness.run(day).success
    manifest = harness.manifest(day)
    for field in ("jsonl", "merkleRoot", "startSeq", "endSeq", "firstPrevHash", "lastHash"):
        assert manifest[field] is None, field
    assert manifest["eventCount"] == 0 and manifest["chainEdges"] == []
    [record] = harness.records(day)
    assert record["jsonlKey"] is None and record["jsonlSha256"] is None
    assert record["bytesCompressed"] == 0 and record["bytesUncompressed"] == 0
    assert harness.object_keys() == [f"audit/day={day}/part-0001.manifest.json"]


def test_late_events_of_an_archived_day_go_to_part_2(harness: Harness) -> None:
    day = due_day(6)
    harness.seed({day: 50, due_day(5): 20})
    assert harness.run(day).success
    late = harness.append([layout.day_bounds(day)[0] + dt.timedelta(hours=h) for h in (1, 2, 3)])

    assert harness.run(day).success

    assert [r["part"] for r in harness.records(day)] == [1, 2]
    assert [e["_id"] for e in harness.part_events(day, 2)] == [e["_id"] for e in late]
    part2 = harness.manifest(day, 2)
    # The late events sit after day 5's events in the chain: every one is an edge or
    # linked inside the part, and the first links back to day 5's last event.
    assert part2["chainEdges"][0]["seq"] == late[0]["seq"]
    assert part2["firstPrevHash"] == max(harness.seeded[:-3], key=lambda e: e["seq"])["hash"]
    harness.assert_invariant(now=layout.day_bounds(day)[1] + dt.timedelta(days=90))


def test_manifest_is_byte_identical_for_the_same_events(harness: Harness) -> None:
    day = due_day(1)
    harness.seed({day: 60})
    snapshot = list(harness.events.find({}))
    assert harness.run(day).success
    first = {k: harness.get(k) for k in harness.object_keys()}

    # The same events again, in a fresh database and bucket.
    harness.batches.drop()
    harness.db[f"{harness.settings.batches_collection}_leases"].drop()
    harness.events.insert_many(snapshot)
    for key in first:
        harness.s3.delete_object(Bucket=harness.bucket, Key=key)
    assert harness.run(day).success

    assert {k: harness.get(k) for k in harness.object_keys()} == first


def test_chain_edges_name_the_links_that_leave_the_part(harness: Harness) -> None:
    day, other = due_day(9), due_day(8)
    start = layout.day_bounds(day)[0]
    other_start = layout.day_bounds(other)[0]
    # Insertion order interleaves the two days: d d O d d (O = an event of the other day).
    docs = harness.append(
        [
            start + dt.timedelta(hours=1),
            start + dt.timedelta(hours=2),
            other_start,
            start + dt.timedelta(hours=3),
            start + dt.timedelta(hours=4),
        ],
        gap_rate=0,
    )
    assert harness.run(day).success
    edges = [e["seq"] for e in harness.manifest(day)["chainEdges"]]
    # first (no predecessor), the two around the foreign event, last (no successor yet)
    assert edges == [docs[0]["seq"], docs[1]["seq"], docs[3]["seq"], docs[4]["seq"]]
    assert harness.hot_seqs() == {docs[2]["seq"]}

    assert harness.run(other).success
    assert [e["seq"] for e in harness.manifest(other)["chainEdges"]] == [docs[2]["seq"]]
    harness.assert_invariant(now=layout.day_bounds(other)[1] + dt.timedelta(days=90))


@pytest.mark.parametrize("lookup", ["seq by seq", "in $in lists of 7 seqs", "as ranges"])
@pytest.mark.parametrize("burned", [0, 3, 500])
def test_another_days_event_in_a_hole_of_the_days_seqs_is_checked_as_a_neighbour(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, lookup: str, burned: int
) -> None:
    """The day's events are read alone; the other days' events between them in the chain
    are found in the holes between the day's seqs, near each end first: looked up seq by
    seq, or as ranges when the seqs there were burned (forced here for every window)."""
    if lookup == "as ranges":
        monkeypatch.setattr(neighbours, "POINT_WINDOW_MAX", 0)
    if lookup.startswith("in $in lists"):
        monkeypatch.setattr(neighbours, "LOOKUP_CHUNK", 7)
    day, other = due_day(9), due_day(8)
    start = layout.day_bounds(day)[0]
    before = harness.append([start + dt.timedelta(hours=h) for h in (1, 2)], gap_rate=0)
    # Seqs burned, then an event of the other day that re-hashes but does not link.
    [foreign] = seed.chain(
        [layout.day_bounds(other)[0]],
        first_seq=before[-1]["seq"] + 1 + burned,
        prev_hash="e" * 64,
    )
    harness.events.insert_one(foreign)
    harness.seeded.append(foreign)
    harness.append([start + dt.timedelta(hours=h) for h in (3, 4)], gap_rate=0)

    result = harness.run(day)

    assert not result.success
    assert (
        f"seq {foreign['seq']}: prevHash does not match the hash of seq {before[-1]['seq']}"
        in failure_messages(result)
    )
    assert harness.events.count_documents({}) == 5 and harness.records() == []


@pytest.mark.parametrize("gap", [3_000, 2_000_000])
def test_a_predecessor_far_away_by_seq_is_still_found(harness: Harness, gap: int) -> None:
    """The nearest neighbour in hot is looked for in widening seq windows; one beyond
    them all is still found (here it does not link, so the run must name it)."""
    earlier, day = due_day(9), due_day(8)
    [far] = harness.append([layout.day_bounds(earlier)[0]], gap_rate=0)
    start = layout.day_bounds(day)[0]
    ats = [start + dt.timedelta(hours=h) for h in (1, 2)]
    docs = list(seed.chain(ats, first_seq=far["seq"] + gap, prev_hash="d" * 64, gap_rate=0))
    harness.events.insert_many(docs)

    result = harness.run(day)

    assert not result.success
    assert (
        f"seq {docs[0]['seq']}: prevHash does not match the hash of seq {far['seq']}"
        in failure_messages(result)
    )


def test_a_tampered_event_fails_the_run_names_its_seq_and_deletes_nothing(harness: Harness) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 30}, gap_rate=0)
    victim = seeded[11]
    harness.events.update_one({"_id": victim["_id"]}, {"$set": {"actor.id": "mallory"}})

    result = harness.run(day)

    assert not result.success
    message = failure_messages(result)
    assert f"seq {victim['seq']}" in message and "re-hash mismatch" in message
    assert "Nothing was deleted" in message
    assert harness.events.count_documents({}) == 30
    assert harness.records() == [] and harness.object_keys() == []


def test_a_broken_link_names_both_events(harness: Harness) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 10}, gap_rate=0)
    # Re-hash an event with a wrong prevHash: it re-hashes fine, but does not link.
    victim = dict(seeded[5], prevHash="f" * 64)
    victim["hash"] = event_hash(victim)
    harness.events.replace_one({"_id": victim["_id"]}, victim)

    result = harness.run(day)

    assert not result.success
    message = failure_messages(result)
    assert (
        f"seq {victim['seq']}: prevHash does not match the hash of seq {seeded[4]['seq']}"
        in message
    )
    assert (
        f"seq {seeded[6]['seq']}: prevHash does not match the hash of seq {victim['seq']}"
        in message
    )
    assert harness.events.count_documents({}) == 10


def test_a_link_to_an_archived_neighbour_is_checked_from_its_chain_edges(harness: Harness) -> None:
    earlier, day = due_day(3), due_day(2)
    harness.seed({earlier: 20, day: 20}, gap_rate=0)
    assert harness.run(earlier).success
    first_of_day = harness.events.find_one({}, sort=[("seq", 1)])
    forged = dict(first_of_day, prevHash="a" * 64)
    forged["hash"] = event_hash(forged)
    harness.events.replace_one({"_id": forged["_id"]}, forged)

    result = harness.run(day)

    assert not result.success
    assert f"seq {forged['seq']}: prevHash does not match" in failure_messages(result)


def test_sse_true_puts_aes256_on_every_object(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("AUDIT_COLD_SSE", "true")
    day = due_day(1)
    harness.seed({day: 5})
    assert harness.run(day).success
    for key in harness.object_keys():
        assert (
            harness.s3.head_object(Bucket=harness.bucket, Key=key)["ServerSideEncryption"]
            == "AES256"
        )


def test_manifest_file_is_pretty_json_with_the_spec_fields(harness: Harness) -> None:
    day = due_day(1)
    harness.seed({day: 3})
    assert harness.run(day).success
    raw = harness.get(f"audit/day={day}/part-0001.manifest.json").decode()
    assert raw.startswith('{\n  "version": 1,')
    assert list(json.loads(raw)) == [
        "version",
        "day",
        "part",
        "eventCount",
        "startSeq",
        "endSeq",
        "firstPrevHash",
        "lastHash",
        "chainEdges",
        "merkleRoot",
        "hashScheme",
        "jsonl",
        "signing",
        "signature",
    ]

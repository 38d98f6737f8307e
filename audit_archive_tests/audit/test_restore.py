"""`audit-archive restore` and audit_restore_job: an archived day comes back exactly as it
was, only after every check holds, and never twice."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from typing import Any

import pytest
from bson import Binary, Decimal128, Int64, Regex, Timestamp

from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive.format.jsonl import parse_line, relaxed_line
from audit_archive.format.manifest import manifest_bytes, sign_manifest
from audit_archive.stores.restore_target import RestoreTarget
from audit_archive_dev import seed
from audit_archive_tests.support.harness import KEY_A, KEY_B, Harness, due_day, same_value

RESTORED = "auditevents_restored"

# Payload of every BSON type an event may carry (all must survive archive and restore).
# Dates after 9999 are left out: SecantusDB cannot store them (test_jsonl covers them).
PAYLOAD: dict[str, Any] = {
    "int32": 7,
    "int64_small": Int64(5),
    "int64_big": Int64(2**62),
    "whole_second": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    "before_1970": dt.datetime(1960, 1, 1, 0, 0, 0, 5000, tzinfo=dt.UTC),
    "floats": [2.0, 0.1, -0.0, 1e300, float("nan"), float("inf"), float("-inf")],
    "decimal": Decimal128("-1.5E+10"),
    "decimal_nan": Decimal128("NaN"),
    "bytes": b"\x00\x01\xff",
    "uuid": Binary(b"\x12" * 16, 4),
    "user_binary": Binary(b"x", 0x80),
    "regex": Regex("^a.*z$", "ims"),
    "ts": Timestamp(1_700_000_000, 3),
    "nested": {"list": [1, "two", None, True, {"deep": ["é", "✓", "\u2028"]}]},
}


def seed_rich(harness: Harness, day: dt.date, n: int) -> list[dict[str, Any]]:
    """``n`` chained events of ``day``, each carrying PAYLOAD, continuing the chain."""
    first_seq, prev = seed.chain_tail(harness.events)
    docs = []
    for doc in seed.chain(seed.day_times(day, n, harness.rng), first_seq=first_seq):
        doc.update(PAYLOAD, prevHash=prev)
        doc["hash"] = event_hash(doc)
        prev = doc["hash"]
        docs.append(doc)
    harness.events.insert_many(docs)
    harness.seeded += docs
    return docs


def stored(harness: Harness, docs: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The documents as MongoDB returns them (before the archive deletes them)."""
    return {d["_id"]: d for d in harness.events.find({"_id": {"$in": [d["_id"] for d in docs]}})}


def restored(harness: Harness, collection: str = RESTORED) -> dict[Any, dict[str, Any]]:
    return {d["_id"]: d for d in harness.db[collection].find({})}


def nothing_written(harness: Harness) -> bool:
    return RESTORED not in harness.db.list_collection_names()


def test_restore_round_trip_brings_back_every_document_unchanged(harness: Harness, capsys) -> None:
    day = due_day(3)
    harness.seed({day: 30, due_day(2): 10})
    rich = seed_rich(harness, day, 5)
    originals = stored(harness, [e for e in harness.seeded if e["at"].date() == day])
    assert len(originals) == 35
    assert harness.run(day).success
    assert not set(originals) & {d["_id"] for d in harness.events.find({})}, "purged from hot"

    assert main(["restore", "--day", str(day)]) == 0

    back = restored(harness)
    assert set(back) == set(originals)
    for _id, original in originals.items():
        assert same_value(back[_id], original), original["seq"]
        assert list(back[_id]) == list(original), "field order is kept"
        assert event_hash(back[_id]) == back[_id]["hash"]
    sample = back[rich[0]["_id"]]
    assert type(sample["uuid"]) is Binary and sample["uuid"].subtype == 4
    assert sample["before_1970"].year == 1960 and isinstance(sample["ts"], Timestamp)
    assert sample["int64_big"] == 2**62 and isinstance(sample["decimal"], Decimal128)
    assert f"restored {day}: 35 events from part 1" in capsys.readouterr().out
    assert harness.events.count_documents({"at": {"$lt": layout.day_bounds(day)[1]}}) == 0, (
        "restore never writes into the hot collection"
    )


def test_restoring_twice_leaves_one_copy(harness: Harness, capsys) -> None:
    day = due_day(2)
    harness.seed({day: 20})
    assert harness.run(day).success
    assert main(["restore", "--day", str(day)]) == 0
    assert "(20 new, 0 already there)" in capsys.readouterr().out
    first = restored(harness)

    assert main(["restore", "--day", str(day)]) == 0

    assert harness.db[RESTORED].count_documents({}) == 20
    assert restored(harness) == first
    assert "(0 new, 20 already there)" in capsys.readouterr().out


def test_a_restored_copy_edited_since_refuses_the_restore_and_nothing_is_written(
    harness: Harness, capsys
) -> None:
    day = due_day(2)
    harness.seed({day: 20})
    assert harness.run(day).success
    assert main(["restore", "--day", str(day)]) == 0
    first = restored(harness)
    edited, removed = list(first)[:2]
    harness.db[RESTORED].update_one({"_id": edited}, {"$set": {"action": "edited.since"}})
    harness.db[RESTORED].delete_one({"_id": removed})
    capsys.readouterr()

    assert main(["restore", "--day", str(day)]) == 1

    err = capsys.readouterr().err
    assert "refused, nothing was written" in err
    assert f"1 document(s) already in {RESTORED} differ from the archived ones" in err
    assert str(edited) in err
    assert harness.db[RESTORED].count_documents({}) == 19, "the removed one was not put back"
    assert restored(harness)[edited]["action"] == "edited.since", "the edit is left as it is"


def test_a_copy_that_differs_only_in_integer_width_counts_as_already_there(
    harness: Harness, capsys
) -> None:
    # Canonically equal (the hash scheme reads Int32 and Int64 alike): not a conflict.
    day = due_day(2)
    docs = harness.seed({day: 5})
    assert harness.run(day).success
    widened = dict(docs[0], seq=Int64(docs[0]["seq"]))
    harness.db[RESTORED].insert_one(widened)

    assert main(["restore", "--day", str(day)]) == 0

    assert "(4 new, 1 already there)" in capsys.readouterr().out
    assert harness.db[RESTORED].count_documents({}) == 5


def test_a_partly_restored_day_inserts_only_what_is_missing(harness: Harness, capsys) -> None:
    day = due_day(2)
    harness.seed({day: 30, due_day(1): 3})
    assert harness.run(day).success
    assert main(["restore", "--day", str(day)]) == 0
    first = restored(harness)
    gone = list(first)[::3]
    harness.db[RESTORED].delete_many({"_id": {"$in": gone}})
    harness.db[RESTORED].insert_one({"_id": "another day's document", "x": 1})
    capsys.readouterr()

    assert main(["restore", "--day", str(day)]) == 0

    assert f"({len(gone)} new, {30 - len(gone)} already there)" in capsys.readouterr().out
    back = restored(harness)
    assert len(back) == 31 and all(same_value(back[i], first[i]) for i in first)


def test_a_different_document_written_during_the_restore_is_named(
    harness: Harness, capsys, monkeypatch
) -> None:
    # Someone writes a different document under an archived _id after the look-up
    # (simulated: the look-up sees an empty target): the new documents are written,
    # the different one is left as it is and named; exit 1.
    day = due_day(2)
    docs = harness.seed({day: 10})
    assert harness.run(day).success
    harness.db[RESTORED].insert_one({**docs[4], "action": "written.meanwhile"})
    monkeypatch.setattr(RestoreTarget, "collection_is_empty", lambda self, name: True)

    assert main(["restore", "--day", str(day)]) == 1

    err = capsys.readouterr().err
    assert "9 new document(s) were written" in err and str(docs[4]["_id"]) in err
    assert "written there while this restore ran" in err
    assert harness.db[RESTORED].count_documents({}) == 10
    assert harness.db[RESTORED].find_one({"_id": docs[4]["_id"]})["action"] == "written.meanwhile"


def test_a_day_with_late_parts_restores_every_part(harness: Harness) -> None:
    day = due_day(5)
    harness.seed({day: 10, due_day(4): 5})
    assert harness.run(day).success
    late = harness.append([layout.day_bounds(day)[0] + dt.timedelta(hours=h) for h in (1, 2)])
    assert harness.run(day).success

    assert main(["restore", "--day", str(day)]) == 0

    back = restored(harness)
    assert len(back) == 12 and {e["_id"] for e in late} <= set(back)


def test_into_names_the_target_collection(harness: Harness) -> None:
    day = due_day(2)
    harness.seed({day: 8})
    assert harness.run(day).success

    assert main(["restore", "--day", str(day), "--into", "case_4711"]) == 0

    assert len(restored(harness, "case_4711")) == 8
    assert nothing_written(harness)


def test_restore_refuses_the_hot_and_batches_collections(harness: Harness, capsys) -> None:
    # Checked before anything is read, so no archived day is needed to show it.
    day = due_day(2)
    for target in ("auditevents", "archivebatches", "archivebatches_leases", "a$b"):
        assert main(["restore", "--day", str(day), "--into", target]) == 2, target
    assert "would be archived again" in capsys.readouterr().err
    assert harness.db.list_collection_names() == []


def test_a_collection_name_too_long_for_mongodb_is_a_usage_error(harness: Harness, capsys) -> None:
    assert main(["restore", "--day", str(due_day(2)), "--into", "c" * 300]) == 2
    err = capsys.readouterr().err
    assert "collection name of 300 characters is too long" in err and "255 bytes" in err
    assert "Traceback" not in err and harness.db.list_collection_names() == []


def test_a_day_with_no_record_exits_1(harness: Harness, capsys) -> None:
    harness.seed({due_day(2): 3})
    assert main(["restore", "--day", str(due_day(2))]) == 1
    assert "has no batch record" in capsys.readouterr().err
    assert nothing_written(harness)


def test_an_empty_archived_day_restores_nothing_and_succeeds(harness: Harness) -> None:
    day = due_day(4)
    harness.seed({due_day(5): 3, due_day(3): 3})
    assert harness.run(day).success
    assert main(["restore", "--day", str(day)]) == 0


# -- refused days: nothing written ----------------------------------------------------------


def archived_day(harness: Harness, n: int = 12) -> tuple[dt.date, str, str]:
    day = due_day(2)
    harness.seed({day: n})
    assert harness.run(day).success
    return day, f"audit/day={day}/part-0001.jsonl.gz", f"audit/day={day}/part-0001.manifest.json"


def put(harness: Harness, key: str, body: bytes) -> None:
    harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=body)


def forge_event(harness: Harness, jsonl_key: str) -> bytes:
    """The events object with one event's action changed (its hash left as it was)."""
    lines = gzip.decompress(harness.get(jsonl_key)).decode().splitlines()
    event = parse_line(lines[4])
    event["action"] = "role.grant"
    lines[4] = relaxed_line(event).rstrip("\n")
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def refused(harness: Harness, day: dt.date, capsys) -> str:
    assert main(["restore", "--day", str(day)]) == 1
    err = capsys.readouterr().err
    assert "refused, nothing was written" in err
    assert nothing_written(harness)
    return err


def test_an_altered_events_object_is_refused(harness: Harness, capsys) -> None:
    day, jsonl_key, _ = archived_day(harness)
    put(harness, jsonl_key, forge_event(harness, jsonl_key))
    assert "sha256 differs" in refused(harness, day, capsys)


def test_an_altered_manifest_is_refused(harness: Harness, capsys) -> None:
    day, _, manifest_key = archived_day(harness)
    manifest = json.loads(harness.get(manifest_key))
    manifest["eventCount"] -= 1
    put(harness, manifest_key, manifest_bytes(manifest))
    assert "signature does not verify" in refused(harness, day, capsys)


def test_an_event_that_does_not_rehash_is_refused_even_under_a_valid_signature(
    harness: Harness, capsys
) -> None:
    # Someone holding the signing key rewrites object, manifest and record consistently:
    # only the per-event hash check can notice.
    day, jsonl_key, manifest_key = archived_day(harness)
    body = forge_event(harness, jsonl_key)
    put(harness, jsonl_key, body)
    manifest = json.loads(harness.get(manifest_key))
    sha = hashlib.sha256(body).hexdigest()
    manifest["jsonl"].update(sha256=sha, bytes=len(body))
    raw = manifest_bytes(sign_manifest(manifest, KEY_A))
    put(harness, manifest_key, raw)
    harness.batches.update_one(
        {"day": str(day)},
        {"$set": {"jsonlSha256": sha, "manifestSha256": hashlib.sha256(raw).hexdigest()}},
    )
    assert "1 event(s) do not re-hash" in refused(harness, day, capsys)


def test_a_manifest_signed_with_an_unknown_key_is_refused_as_unverifiable(
    harness: Harness, capsys, monkeypatch
) -> None:
    day, _, _ = archived_day(harness)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", KEY_B)  # key rotated, old key not kept

    assert "unverifiable, not tampered" in refused(harness, day, capsys)

    monkeypatch.setenv("AUDIT_SIGNING_KEYS_PREVIOUS", KEY_A)
    assert main(["restore", "--day", str(day)]) == 0, "a retired key still verifies"


def test_a_manifest_other_than_the_recorded_one_is_refused(harness: Harness, capsys) -> None:
    day, _, manifest_key = archived_day(harness)
    # Validly signed, but not the manifest the batch record names.
    put(harness, manifest_key, json.dumps(json.loads(harness.get(manifest_key))).encode())
    assert "differs from the manifest its batch record names" in refused(harness, day, capsys)


# -- the Dagster job ------------------------------------------------------------------------


def run_restore_job(day: dt.date, into: str | None = None):
    from audit_archive.definitions import defs

    config = {"ops": {"restore_day": {"config": {"into": into}}}} if into else None
    return defs.resolve_job_def("audit_restore_job").execute_in_process(
        partition_key=str(day), run_config=config, raise_on_error=False
    )


def test_audit_restore_job_restores_the_partitions_day(harness: Harness) -> None:
    day = due_day(2)
    harness.seed({day: 9})
    assert harness.run(day).success

    result = run_restore_job(day, into="from_the_ui")

    assert result.success
    assert len(restored(harness, "from_the_ui")) == 9
    assert result.output_for_node("restore_day") == 9


@pytest.mark.parametrize("tamper", [True, False], ids=["tampered", "no-record"])
def test_audit_restore_job_fails_and_writes_nothing(harness: Harness, tamper: bool) -> None:
    if tamper:
        day, jsonl_key, _ = archived_day(harness)
        put(harness, jsonl_key, forge_event(harness, jsonl_key))
    else:
        day = due_day(7)

    result = run_restore_job(day)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert ("sha256 differs" if tamper else "has no batch record") in message
    assert nothing_written(harness)


def test_audit_restore_job_fails_on_a_conflicting_target_and_writes_nothing(
    harness: Harness,
) -> None:
    day = due_day(2)
    docs = harness.seed({day: 6})
    assert harness.run(day).success
    harness.db["case_1"].insert_one({**docs[2], "action": "edited"})

    result = run_restore_job(day, into="case_1")

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "differ from the archived ones" in failure.event_specific_data.error.message
    assert harness.db["case_1"].count_documents({}) == 1

"""The invariant checker itself: every reliability test ends with it, so it must fail on
each kind of damage it claims to find (a checker that passes everything proves nothing)."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
from collections.abc import Callable, Iterator

import pytest

from audit_archive.format import layout
from audit_archive.format.manifest import manifest_bytes, sign_manifest
from audit_archive_tests.support.harness import KEY_A, Harness, due_day


@contextlib.contextmanager
def broken(harness: Harness, damage: Callable[[], Callable[[], None]]) -> Iterator[None]:
    """Apply ``damage`` (which returns its own repair), expect the invariant to fail,
    then repair and expect it to hold again."""
    repair = damage()
    try:
        with pytest.raises(AssertionError):
            harness.assert_invariant()
        yield
    finally:
        repair()
    harness.assert_invariant()


def test_the_invariant_fails_on_every_kind_of_damage(harness: Harness) -> None:
    day, other = due_day(3), due_day(2)
    harness.seed({day: 20, other: 10, due_day(-5): 3}, gap_rate=0)
    assert harness.run(day).success and harness.run(other).success
    harness.assert_invariant()
    s3, bucket = harness.s3, harness.bucket
    [rec] = harness.records(day)
    jsonl_key, manifest_key = rec["jsonlKey"], rec["manifestKey"]
    original_jsonl, original_manifest = harness.get(jsonl_key), harness.get(manifest_key)

    def put(key: str, body: bytes) -> Callable[[], None]:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return lambda: None

    def restore_objects() -> None:
        s3.put_object(Bucket=bucket, Key=jsonl_key, Body=original_jsonl)
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=original_manifest)

    def drop_event() -> Callable[[], None]:  # an event of the day lost from the part
        lines = gzip.decompress(original_jsonl).splitlines(keepends=True)
        s3.put_object(Bucket=bucket, Key=jsonl_key, Body=gzip.compress(b"".join(lines[1:])))
        return restore_objects

    def resign(change: Callable[[dict], None]) -> Callable[[], Callable[[], None]]:
        def damage() -> Callable[[], None]:  # a validly signed manifest that lies
            manifest = json.loads(original_manifest)
            change(manifest)
            s3.put_object(
                Bucket=bucket, Key=manifest_key, Body=manifest_bytes(sign_manifest(manifest, KEY_A))
            )
            return restore_objects

        return damage

    def stray_object() -> Callable[[], None]:
        key = f"audit/day={day}/part-0009.jsonl.gz"
        put(key, b"x")
        return lambda: s3.delete_object(Bucket=bucket, Key=key)

    def incomplete_upload() -> Callable[[], None]:
        upload = s3.create_multipart_upload(Bucket=bucket, Key="audit/day=x/part.jsonl.gz")
        return lambda: s3.abort_multipart_upload(
            Bucket=bucket, Key="audit/day=x/part.jsonl.gz", UploadId=upload["UploadId"]
        )

    def archived_event_back_in_hot() -> Callable[[], None]:
        event = next(e for e in harness.seeded if e["at"].date() == day)
        harness.events.insert_one(event)
        return lambda: harness.events.delete_one({"_id": event["_id"]})

    def hot_event_deleted() -> Callable[[], None]:
        event = harness.events.find_one({})
        harness.events.delete_one({"_id": event["_id"]})
        return lambda: harness.events.insert_one(event)

    def broken_link_in_hot() -> Callable[[], None]:
        event = harness.events.find_one({}, sort=[("seq", -1)])
        harness.events.update_one({"_id": event["_id"]}, {"$set": {"prevHash": "e" * 64}})
        return lambda: harness.events.replace_one({"_id": event["_id"]}, event)

    def duplicate_record() -> Callable[[], None]:
        harness.batches.insert_one({**rec, "part": 3})
        return lambda: harness.batches.delete_one({"day": rec["day"], "part": 3})

    for damage in (
        drop_event,
        resign(lambda m: m.update(chainEdges=m["chainEdges"][:1])),
        resign(lambda m: m.update(merkleRoot="0" * 64)),
        resign(lambda m: m.update(lastHash="f" * 64)),
        stray_object,
        incomplete_upload,
        archived_event_back_in_hot,
        hot_event_deleted,
        broken_link_in_hot,
        duplicate_record,
    ):
        with broken(harness, damage):
            pass
    with pytest.raises(AssertionError, match="not archived"):
        harness.assert_invariant(now=layout.day_bounds(due_day(-5))[1] + dt.timedelta(days=91))

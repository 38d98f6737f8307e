"""Large input: an event near MongoDB's 16 MiB document limit, in a day whose JSONL.gz
needs several multipart parts (AUDIT_COLD_PART_SIZE_MIB=5, S3's minimum part size)."""

from __future__ import annotations

import datetime as dt

import bson
import pytest

from audit_archive.format import layout
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import (
    MIB,
    append_events,
    failure_messages,
    random_text,
)

BSON_LIMIT = 16 * MIB  # MongoDB's maximum document size


def test_an_event_near_16_mib_is_archived_in_a_multipart_upload(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_COLD_PART_SIZE_MIB", "5")
    day = due_day(2)
    start = layout.day_bounds(day)[0]
    [before] = append_events(harness, [start + dt.timedelta(hours=1)])
    [big] = append_events(
        harness,
        [start + dt.timedelta(hours=2)],
        lambda i: {"blob": random_text(harness, BSON_LIMIT - 16 * 1024)},
    )
    [after] = append_events(harness, [start + dt.timedelta(hours=3)])
    size = len(bson.encode(big))
    assert BSON_LIMIT - 32 * 1024 < size < BSON_LIMIT, size

    result = harness.run(day)

    assert result.success, failure_messages(result)
    [record] = harness.records(day)
    assert record["eventCount"] == 3 and record["bytesUncompressed"] > BSON_LIMIT - 32 * 1024
    head = harness.s3.head_object(Bucket=harness.bucket, Key=record["jsonlKey"])
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])
    assert parts >= 3, f"{record['bytesCompressed']} bytes in {parts} parts of 5 MiB"
    assert [e["_id"] for e in harness.part_events(day)] == [before["_id"], big["_id"], after["_id"]]
    assert harness.events.count_documents({}) == 0
    harness.assert_invariant()

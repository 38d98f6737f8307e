"""The day's read (EventStore.iter_day_raw) unpacks the server's replies itself: each
batch's documents joined in C, with no object per event (issue 24), and only the
reply's few other fields decoded by the driver. What it yields is exactly what the
driver's find_raw_batches yields, byte for byte and batch for batch, on users' data:
seqs as Int32 and Int64 together, payloads of every BSON type, a late event far apart
in seq, several getMores, with the C module on or off."""

from __future__ import annotations

import datetime as dt
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId
from pymongo import ASCENDING

from audit_archive.format import nativecodec
from audit_archive.stores.events import EventStore, day_filter
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.samples import EVERY_BSON_TYPE


def events_of(day: dt.date, count: int) -> list[dict[str, Any]]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    docs = []
    for i in range(count):
        seq = 1_000 + i if i < count - 1 else 9_000_000_000  # the last one late, far apart
        docs.append(
            {
                "_id": ObjectId(),
                "seq": Int64(seq) if i % 2 else seq,
                "at": start + dt.timedelta(seconds=i * 7),
                "hash": f"{i:064x}",
                "payload": EVERY_BSON_TYPE if i % 3 == 0 else {"n": i, "s": "é" * (i % 40)},
            }
        )
    return docs


def driver_batches(harness: Harness, day: dt.date, size: int) -> list[bytes]:
    cursor = harness.events.find_raw_batches(day_filter(day)).sort("seq", ASCENDING)
    return list(cursor.batch_size(size))


@pytest.mark.parametrize("native", [True, False], ids=["c", "python"])
def test_the_days_batches_are_the_drivers_byte_for_byte(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(nativecodec, "ENABLED", native)
    day, other = due_day(2), due_day(3)
    harness.events.insert_many(events_of(day, 61) + events_of(other, 5))
    store = EventStore(harness.events, None)  # type: ignore[arg-type]  # reads only

    ours = list(store.iter_day_raw(day).batch_size(7))

    assert len(ours) == 9, "a firstBatch and eight getMores"
    assert ours == driver_batches(harness, day, 7)
    seqs = [d["seq"] for d in bson.decode_all(b"".join(ours))]
    assert len(seqs) == 61 and seqs == sorted(seqs) and seqs[-1] == 9_000_000_000


def test_an_empty_day_and_a_single_batch_day_read_as_the_driver_reads_them(
    harness: Harness,
) -> None:
    day = due_day(2)
    harness.events.insert_many(events_of(day, 3))
    store = EventStore(harness.events, None)  # type: ignore[arg-type]
    assert list(store.iter_day_raw(due_day(5))) == driver_batches(harness, due_day(5), 100) == []
    ours = list(store.iter_day_raw(day))
    assert ours == driver_batches(harness, day, 2000) and len(ours) == 1

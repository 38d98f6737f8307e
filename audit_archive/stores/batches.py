"""The batch records in MongoDB: one document per archived part (SPEC section 4).

``(day, part)`` is unique: whatever races, a part is recorded once. Recording is fenced
by the day's lease (stores.leasestore); the signed log's index on a record is written by
stores.logstore.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from audit_archive.format.chain import Link
from audit_archive.format.layout import format_day, parse_day
from audit_archive.stores.leasestore import Fence, LeaseStore


class BatchStore:
    """The archive's record of every part it archived, by day and part."""

    def __init__(self, batches: Collection, leases: LeaseStore) -> None:
        self.collection = batches
        self.leases = leases

    def ensure_indexes(self) -> None:
        """The unique ``(day, part)`` index: a part is recorded once. Idempotent."""
        self.collection.create_index(
            [("day", ASCENDING), ("part", ASCENDING)], unique=True, name="day_part_unique"
        )

    def records(self, day: dt.date | None = None) -> list[dict[str, Any]]:
        """The day's records (every record without a day), by day and part."""
        flt = {} if day is None else {"day": format_day(day)}
        return list(self.collection.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)]))

    def records_between(self, first: dt.date, last: dt.date) -> Iterator[dict[str, Any]]:
        """The batch records of the days in [first, last], by day and part: one query
        whatever the range, so a range of centuries costs what its records cost."""
        flt = {"day": {"$gte": format_day(first), "$lte": format_day(last)}}
        return self.collection.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)])

    def records_holding_seq(self, seq: int) -> list[dict[str, Any]]:
        """Recorded parts whose seq range contains ``seq`` (ranges of interleaved days
        overlap), oldest day first. Int32 and Int64 compare by value."""
        flt = {"startSeq": {"$lte": seq}, "endSeq": {"$gte": seq}}
        return list(self.collection.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)]))

    def archived_days(self, first: dt.date, last: dt.date) -> set[dt.date]:
        """Days in [first, last] with at least one batch record (the catch-up sensor)."""
        flt = {"day": {"$gte": format_day(first), "$lte": format_day(last)}}
        return {parse_day(day) for day in self.collection.distinct("day", flt)}

    def insert_record(self, record: dict[str, Any], fence: Fence | None = None) -> bool:
        """True if inserted, False if (day, part) was already recorded. With a ``fence``,
        in one transaction with the lease check (LeaseLost: not inserted)."""
        try:
            if fence is None:
                self.collection.insert_one(dict(record))
            else:
                self.leases.fenced(
                    fence, lambda s: self.collection.insert_one(dict(record), session=s)
                )
        except DuplicateKeyError:
            return False
        return True

    def archived_edges(self) -> list[Link]:
        """Every recorded part's chainEdges, sorted by seq (small: two per part, mostly)."""
        edges = [
            Link(e["seq"], e.get("prevHash"), e.get("hash"))
            for rec in self.collection.find({}, {"chainEdges": 1, "_id": 0})
            for e in rec.get("chainEdges") or ()
        ]
        edges.sort(key=lambda link: link.seq)
        return edges

"""MongoDB side: the day's events, their chain neighbours, batch records, leases, purge.

Queries only; the rules (what is a part, when to delete) live in archiver.py.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, DeleteOne, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from .canonical import EVENT_CODEC_OPTIONS
from .chain import Link
from .layout import day_bounds
from .malformed import HEX64_PATTERN, WELL_FORMED_SEQ_TYPES, describe, is_integer_seq, problem

CHAINED = {"hash": {"$type": "string"}}
# Documents per getMore while streaming a day: bounds the client's memory (~1 MB).
DAY_CURSOR_BATCH = 2000
# The indexes ensure_indexes creates, named in hints: every archive query is a range on
# seq (or a day's range on at), and a planner that looks only at the first predicate
# (SecantusDB does) would otherwise scan the whole collection, once per purge batch.
AT_SEQ_INDEX = "archive_at_seq"
SEQ_INDEX = "archive_seq"
_LINK_FIELDS = {"_id": 0, "seq": 1, "prevHash": 1, "hash": 1}
_NAMED_FIELDS = {"_id": 1, "seq": 1, "at": 1, "prevHash": 1, "hash": 1}
INTEGER_SEQ = {"$type": WELL_FORMED_SEQ_TYPES}
MALFORMED_LISTED = 100  # malformed events named per query (the rest are counted)


def day_filter(day: dt.date) -> dict[str, Any]:
    start, end = day_bounds(day)
    return {"at": {"$gte": start, "$lt": end}, **CHAINED}


def _link(doc: dict[str, Any] | None) -> Link | None:
    if doc is None:
        return None
    return Link(doc.get("seq"), doc.get("prevHash"), doc.get("hash"))


@dataclass(frozen=True)
class Lease:
    day: str
    owner: str
    host: str
    pid: int
    expires_at: dt.datetime


class HotStore:
    """The hot database: events, batch records and the archive's own bookkeeping."""

    def __init__(self, client: MongoClient, database: str, events: str, batches: str) -> None:
        self.client = client
        self.db: Database = client.get_database(database, codec_options=EVENT_CODEC_OPTIONS)
        self.events: Collection = self.db[events]
        self.raw_events: Collection = self.db.get_collection(
            events,
            codec_options=EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument),
        )
        self.batches: Collection = self.db[batches]
        self.leases: Collection = self.db[f"{batches}_leases"]

    # -- set-up -------------------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Idempotent: createIndexes with the same spec is a no-op on the server."""
        self.events.create_index([("at", ASCENDING), ("seq", ASCENDING)], name=AT_SEQ_INDEX)
        self.events.create_index([("seq", ASCENDING)], name=SEQ_INDEX)
        self.batches.create_index(
            [("day", ASCENDING), ("part", ASCENDING)], unique=True, name="day_part_unique"
        )

    def ping(self) -> None:
        self.client.admin.command("ping")

    # -- events -----------------------------------------------------------------

    def day_seq_bounds(self, day: dt.date) -> tuple[int, int] | None:
        """Lowest and highest seq among the day's well-formed chained events still in hot
        (integer seq, 64-hex hash): a malformed one must not widen or empty the range."""
        return self.day_scan(day)[0]

    def day_scan(self, day: dt.date) -> tuple[tuple[int, int] | None, int]:
        """One pass over the day's chained events in hot: the bounds of the well-formed
        ones (see day_seq_bounds), and how many have a seq that is not an integer (the
        seq-range queries never see those; extract names them only when there are any).
        One aggregate, because a sorted find_one is a pass of its own on SecantusDB."""
        is_int = {"$in": [{"$type": "$seq"}, WELL_FORMED_SEQ_TYPES]}
        well = {"$and": [is_int, {"$regexMatch": {"input": "$hash", "regex": HEX64_PATTERN}}]}
        pipeline = [
            {"$match": day_filter(day)},
            {"$project": {"_id": 0, "seq": 1, "w": well, "i": is_int}},
            {
                "$group": {
                    "_id": None,
                    "lo": {"$min": {"$cond": ["$w", "$seq", None]}},
                    "hi": {"$max": {"$cond": ["$w", "$seq", None]}},
                    "odd": {"$sum": {"$cond": ["$i", 0, 1]}},
                }
            },
        ]
        found = list(self.events.aggregate(pipeline, hint=AT_SEQ_INDEX))
        if not found:
            return None, 0
        lo, hi, odd = found[0]["lo"], found[0]["hi"], found[0]["odd"]
        return (None if lo is None else (lo, hi)), odd

    def iter_day_raw(self, day: dt.date, lo: int, hi: int) -> Iterator[bytes]:
        """The day's chained events in seq order, as raw BSON batches (each the server's
        reply, documents concatenated): staged as they come, decoded later, once."""
        flt = {"seq": {"$gte": lo, "$lte": hi}, **day_filter(day)}
        cursor = self.events.find_raw_batches(flt, batch_size=DAY_CURSOR_BATCH)
        return cursor.sort("seq", ASCENDING).hint(SEQ_INDEX)

    def iter_foreign_links(
        self, day: dt.date, lo: int, hi: int, malformed: list[str] | None = None
    ) -> Iterator[Link]:
        """Chained events of other days (or of no day) whose seq falls inside [lo, hi].

        One with a seq that is not an integer has no place in the chain and is left out;
        one without a date ``at`` belongs to no day but still links the chain. Both are
        named in ``malformed``: no day's run will ever archive them."""
        start, end = day_bounds(day)
        flt = {
            "seq": {"$gte": lo, "$lte": hi},
            **CHAINED,
            "at": {"$not": {"$gte": start, "$lt": end}},
        }
        cursor = self.events.find(flt, _NAMED_FIELDS, batch_size=5000)
        for doc in cursor.sort("seq", ASCENDING).hint(SEQ_INDEX):
            reason = problem(doc)
            if reason is not None and malformed is not None and "hash" not in reason:
                malformed.append(describe(doc, reason))  # a bad hash: its own day names it
            if is_integer_seq(doc.get("seq")):
                yield Link(doc.get("seq"), doc.get("prevHash"), doc.get("hash"))

    def malformed_day_events(self, day: dt.date, *, only_odd_seq: bool) -> list[str]:
        """The day's malformed chained events, named. With ``only_odd_seq``, those whose
        seq is not an integer (call it when day_scan counted some); otherwise all of
        them, reading every chained event of the day still in hot (cheap once the day's
        well-formed events are archived)."""
        flt = day_filter(day)
        if only_odd_seq:
            flt = {**flt, "seq": {"$not": INTEGER_SEQ}}
        out = []  # no index hint: verify calls this on databases the archive never indexed
        for doc in self.events.find(flt, _NAMED_FIELDS).sort("seq", ASCENDING):
            reason = problem(doc)
            if reason is not None:
                out.append(describe(doc, reason))
        if len(out) > MALFORMED_LISTED:
            out = [*out[:MALFORMED_LISTED], f"and {len(out) - MALFORMED_LISTED} more"]
        return out

    def hot_predecessor(self, seq: int) -> Link | None:
        return _link(
            self.events.find_one(
                {"seq": {"$lt": seq, **INTEGER_SEQ}, **CHAINED},
                _LINK_FIELDS,
                sort=[("seq", DESCENDING)],
                hint=SEQ_INDEX,
            )
        )

    def hot_successor(self, seq: int) -> Link | None:
        return _link(
            self.events.find_one(
                {"seq": {"$gt": seq, **INTEGER_SEQ}, **CHAINED},
                _LINK_FIELDS,
                sort=[("seq", ASCENDING)],
                hint=SEQ_INDEX,
            )
        )

    def count_day_in_seq_range(self, day: dt.date, lo: int, hi: int) -> int:
        return self.events.count_documents(
            {"seq": {"$gte": lo, "$lte": hi}, **day_filter(day)}, hint=SEQ_INDEX
        )

    def oldest_hot_seq(self) -> int | None:
        # Integer seqs only: a malformed event without one (null sorts first) is no bound.
        doc = self.events.find_one(
            {**CHAINED, "seq": INTEGER_SEQ}, {"seq": 1}, sort=[("seq", ASCENDING)]
        )
        return None if doc is None else doc["seq"]

    # -- verification (read-only) ----------------------------------------------------

    def chained_within(
        self, above: int | None, below: int | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The lowest and highest chained events with ``above < seq < below`` (either
        bound may be open), as ``{seq, prevHash, hash, at}``: the hot side of a link."""
        seq: dict[str, Any] = {}
        if above is not None:
            seq["$gt"] = above
        if below is not None:
            seq["$lt"] = below
        flt = {**CHAINED, **({"seq": seq} if seq else {})}
        fields = {**_LINK_FIELDS, "at": 1}
        lo = self.events.find_one(flt, fields, sort=[("seq", ASCENDING)])
        if lo is None:
            return None, None
        hi = self.events.find_one(flt, fields, sort=[("seq", DESCENDING)])
        return lo, hi

    def chained_days(self, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.date, int]]:
        """Each UTC day with ``start <= at < end`` that has chained events in hot, with
        their count: one indexed hop per such day, not a scan of the events."""
        since = start
        while since < end:
            doc = self.events.find_one(
                {"at": {"$gte": since, "$lt": end}, **CHAINED}, {"at": 1}, sort=[("at", ASCENDING)]
            )
            at = None if doc is None else doc.get("at")
            if not isinstance(at, dt.datetime):
                return
            day = at.astimezone(dt.UTC).date()
            yield day, self.events.count_documents(day_filter(day))
            since = day_bounds(day)[1]

    # -- purge ------------------------------------------------------------------

    def delete_seq_run(self, day: dt.date, lo: int, hi: int, expected: int) -> bool:
        """Delete the day's chained events with lo <= seq <= hi, but only if exactly
        ``expected`` of them match: inside a transaction, aborted otherwise."""
        flt = {"seq": {"$gte": lo, "$lte": hi}, **day_filter(day)}

        def delete(session: Any) -> None:
            deleted = self.events.delete_many(flt, session=session, hint=SEQ_INDEX).deleted_count
            if deleted != expected:
                raise _CountMismatch  # aborts the transaction: nothing is deleted

        with self.client.start_session() as session:
            try:
                # with_transaction retries transient transaction errors by itself.
                session.with_transaction(delete)
            except _CountMismatch:
                return False
            except OperationFailure as e:
                if e.code == 20 or "Transaction numbers are only allowed" in str(e):
                    return False  # standalone server without transactions: exact ids
                raise
        return True

    def delete_ids(self, ids: Iterable[Any]) -> int:
        """Delete exactly these ids (the exact, slower path)."""
        ops = [DeleteOne({"_id": i, **CHAINED}, hint="_id_") for i in ids]
        if not ops:
            return 0
        return self.events.bulk_write(ops, ordered=False).deleted_count

    # -- batch records ---------------------------------------------------------------

    def records(self, day: str | None = None) -> list[dict[str, Any]]:
        flt = {} if day is None else {"day": day}
        return list(self.batches.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)]))

    def archived_days(self, first: str, last: str) -> set[str]:
        """Days in [first, last] with at least one batch record (the catch-up sensor)."""
        return set(self.batches.distinct("day", {"day": {"$gte": first, "$lte": last}}))

    def insert_record(self, record: dict[str, Any]) -> bool:
        """True if inserted, False if (day, part) was already recorded."""
        try:
            self.batches.insert_one(dict(record))
        except DuplicateKeyError:
            return False
        return True

    def archived_edges(self) -> list[Link]:
        """Every recorded part's chainEdges, sorted by seq (small: two per part, mostly)."""
        edges = [
            Link(e["seq"], e.get("prevHash"), e.get("hash"))
            for rec in self.batches.find({}, {"chainEdges": 1, "_id": 0})
            for e in rec.get("chainEdges") or ()
        ]
        edges.sort(key=lambda link: link.seq)
        return edges

    # -- leases -----------------------------------------------------------------

    def acquire_lease(self, day: str, owner: str, seconds: int) -> Lease:
        """Take the day's lease, or return the holder's lease if someone else has it.

        A lease whose holder died on this host (pid gone) is taken over at once; one held
        elsewhere is taken over when it expires (the holder renews it while working).
        """
        now = dt.datetime.now(dt.UTC)
        mine = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid()}
        expires = now + dt.timedelta(seconds=seconds)
        current = self.leases.find_one({"_id": day})
        takeover = current is not None and (
            current["owner"] == owner
            or current["expiresAt"] <= now
            or (current.get("host") == mine["host"] and not _pid_alive(current.get("pid")))
        )
        try:
            if current is None:
                self.leases.insert_one({"_id": day, **mine, "expiresAt": expires})
            elif takeover:
                res = self.leases.update_one(
                    {"_id": day, "owner": current["owner"], "expiresAt": current["expiresAt"]},
                    {"$set": {**mine, "expiresAt": expires}},
                )
                if res.matched_count != 1:
                    return self._lease(self.leases.find_one({"_id": day}))
            else:
                return self._lease(current)
        except DuplicateKeyError:
            return self._lease(self.leases.find_one({"_id": day}))
        return Lease(day, owner, mine["host"], mine["pid"], expires)

    def renew_lease(self, day: str, owner: str, seconds: int) -> bool:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        res = self.leases.update_one({"_id": day, "owner": owner}, {"$set": {"expiresAt": expires}})
        return res.matched_count == 1

    def release_lease(self, day: str, owner: str) -> None:
        self.leases.delete_one({"_id": day, "owner": owner})

    @staticmethod
    def _lease(doc: dict[str, Any] | None) -> Lease:
        if doc is None:  # released between our two reads: report it as just expired
            return Lease("", "", "", 0, dt.datetime.now(dt.UTC))
        return Lease(
            doc["_id"], doc["owner"], doc.get("host", ""), doc.get("pid", 0), doc["expiresAt"]
        )


class _CountMismatch(Exception):
    """Something besides the part's events matched a purge run."""


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

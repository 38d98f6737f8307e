"""The hot events collection: the day's events, their chain neighbours, purge.

Queries only; the rules (what is a part, when to delete) live in audit_archive.archive.
The application writes these events; the archive reads them and, once a part is
recorded, deletes them (fenced by the day's lease: stores.leasestore).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import bson
from bson.codec_options import CodecOptions
from pymongo import ASCENDING, DESCENDING, DeleteOne
from pymongo.collection import Collection
from pymongo.cursor import RawBatchCursor
from pymongo.errors import OperationFailure

from audit_archive.format import bsonpeek, nativecodec
from audit_archive.format.chain import Link
from audit_archive.format.layout import day_bounds
from audit_archive.format.malformed import (
    BAD_HASH,
    WELL_FORMED_SEQ_TYPES,
    describe,
    is_integer_seq,
    problem,
)
from audit_archive.stores.leasestore import Fence, LeaseStore
from audit_archive.stores.privileges import UNAUTHORIZED

CHAINED = {"hash": {"$type": "string"}}
# Documents per getMore while streaming a day: bounds the client's memory (~1 MB).
DAY_CURSOR_BATCH = 2000
# The indexes ensure_indexes creates. Every archive query on the events is a range (or an
# $in) on seq, or a day's range on at, written as the filter's FIRST field: MongoDB's
# planner picks the index by cost whatever the order, SecantusDB's takes the first field
# an index serves. No query names an index in a hint: SecantusDB answers a hint by
# walking the whole index, a pass over every event in hot instead of a range of it.
AT_SEQ_INDEX = "archive_at_seq"
SEQ_INDEX = "archive_seq"
EVENT_INDEXES = (
    ([("at", ASCENDING), ("seq", ASCENDING)], AT_SEQ_INDEX),
    ([("seq", ASCENDING)], SEQ_INDEX),
)
# IndexOptionsConflict, IndexKeySpecsConflict: the server already has an index like it.
INDEX_CONFLICT_CODES = (85, 86)
_LINK_FIELDS = {"_id": 0, "seq": 1, "prevHash": 1, "hash": 1}
_NAMED_FIELDS = {"_id": 1, "seq": 1, "at": 1, "prevHash": 1, "hash": 1}
INTEGER_SEQ = {"$type": WELL_FORMED_SEQ_TYPES}
# A server's reply around a batch, decoded as the driver decodes replies.
_REPLY_OPTIONS = CodecOptions(unicode_decode_error_handler="replace")
MALFORMED_LISTED = 100  # malformed events named per query (the rest are counted)


class DayBatches(RawBatchCursor):
    """``find_raw_batches``, without its cost per event: pymongo re-assembles each
    reply's batch (a BSON array) into concatenated documents by decoding the array into
    one RawBSONDocument per event first (~1.2 us an event: an eighth of the archive's
    CPU per event on small events). This cursor joins the batch's documents in C
    (nativecodec.array_documents) and lets the driver decode only the reply's few other
    fields; anything else (an error reply, say) goes the driver's own way. Retries,
    sessions and killCursors stay the driver's: only the reply's unpacking differs."""

    def _unpack_response(  # type: ignore[override]
        self,
        response: Any,
        cursor_id: int | None,
        codec_options: CodecOptions,
        user_fields: Mapping[str, Any] | None = None,
        legacy_response: bool = False,
    ) -> list[dict[str, Any]]:
        payload = getattr(response, "payload_document", None)
        split = (
            None if legacy_response or payload is None else bsonpeek.cursor_batch(bytes(payload))
        )
        if split is None:
            return super()._unpack_response(
                response, cursor_id, codec_options, user_fields, legacy_response
            )
        array, key, rest = split
        batch = nativecodec.array_documents(array)
        if batch is None:
            batch = bsonpeek.array_documents(array)  # raises, saying what is wrong
        reply: dict[str, Any] = bson.decode(rest, _REPLY_OPTIONS)
        reply["cursor"][key] = [batch] if batch else []
        return [reply]


def day_filter(day: dt.date) -> dict[str, Any]:
    start, end = day_bounds(day)
    return {"at": {"$gte": start, "$lt": end}, **CHAINED}


def _serves(spec: Mapping[str, Any], keys: list[tuple[str, int]]) -> bool:
    """Whether an existing index (a listIndexes entry) has exactly these keys and covers
    every document with the plain comparison, visible to the planner: no partial filter,
    no collation, not hidden. Unique, sparse or a name of the application's do not change
    which documents a range on these keys finds. Directions may come back as doubles or
    Int64."""
    if any(spec.get(option) for option in ("partialFilterExpression", "collation", "hidden")):
        return False
    key = list(spec.get("key", {}).items())
    return len(key) == len(keys) and all(
        field == want_field and isinstance(direction, int | float) and direction == want
        for (field, direction), (want_field, want) in zip(key, keys, strict=True)
    )


class EventStore:
    """The application's chained events in hot: read by day and by seq, purged by part."""

    def __init__(self, events: Collection, leases: LeaseStore) -> None:
        self.collection = events
        self.leases = leases

    def ensure_indexes(self) -> None:
        """Make sure the events have an index on ``(at, seq)`` and one on ``seq``. An index the application already has
        on the same keys, under any name (its ``at_1_seq_1``, a unique ``seq_1``), serves
        the archive's queries as well as ours: it is used as it is, because MongoDB and
        SecantusDB refuse a second index on the same keys (IndexOptionsConflict). The
        application's indexes are never dropped or changed. Idempotent."""
        existing = list(self.collection.list_indexes())
        for keys, name in EVENT_INDEXES:
            if any(_serves(spec, keys) for spec in existing):
                continue
            try:
                self.collection.create_index(keys, name=name)
            except OperationFailure as e:
                # An index on these keys that _serves does not count (a partial one, a
                # collated one) and the server will not have a second: the queries run
                # on what there is (slower, never wrong). Never a reason to fail a run.
                if e.code not in INDEX_CONFLICT_CODES:
                    raise

    def indexes_present(self) -> bool:
        """Whether indexes serving the archive's queries are there already (then
        ensure_indexes creates none, and the archive needs no createIndex on the events).
        False when the user may not list them."""
        try:
            existing = list(self.collection.list_indexes())
        except OperationFailure as e:
            if e.code == UNAUTHORIZED:
                return False  # listIndexes is reported missing; createIndex may be too
            raise
        return all(any(_serves(spec, keys) for spec in existing) for keys, _ in EVENT_INDEXES)

    def iter_day_raw(self, day: dt.date) -> Iterator[bytes]:
        """The day's chained events in seq order, as raw BSON batches (each the server's
        reply, documents concatenated): staged as they come, decoded later, once. All of
        them, malformed ones too (encode names those): one pass, the only one that
        reads the day's events."""
        cursor = DayBatches(self.collection, day_filter(day), batch_size=DAY_CURSOR_BATCH)
        return cursor.sort("seq", ASCENDING)

    def links_at(self, seqs: list[int], malformed: list[str] | None = None) -> list[Link]:
        """The chained events with one of these (integer) seqs, in ascending seq: one
        index lookup per seq ($in), reading only the events found. One with a seq that
        is not an integer (a double 5.0 matches 5) has no place in the chain and is left
        out; one without a date ``at`` belongs to no day but still links the chain.
        Both are named in ``malformed``: no day's run will ever archive them."""
        cursor = self.collection.find(
            {"seq": {"$in": seqs}, **CHAINED}, _NAMED_FIELDS, batch_size=len(seqs) + 1
        )
        return sorted(self._links(cursor, malformed), key=lambda link: link.seq)

    def links_between(
        self,
        lo: int | None,
        hi: int | None,
        malformed: list[str] | None = None,
        *,
        first: int | None = None,
    ) -> list[Link]:
        """The chained events with ``lo <= seq <= hi`` (None: unbounded), ascending; with
        ``first`` (ASCENDING or DESCENDING), only the nearest to that end. A range query:
        SecantusDB reads every event the range selects before it sorts, so callers keep
        ranges narrow (archive.neighbours); on MongoDB the nearest one is an index seek.
        The range is bare (no $type beside it, which would take SecantusDB off the
        index), so the rare double seq it also matches is skipped here."""
        seq: dict[str, int] = {}
        if lo is not None:
            seq["$gte"] = lo
        if hi is not None:
            seq["$lte"] = hi
        flt = {"seq": seq, **CHAINED} if seq else dict(CHAINED)
        cursor = self.collection.find(flt, _NAMED_FIELDS, batch_size=16 if first else 5000)
        cursor.sort("seq", first or ASCENDING)
        links = []
        for link in self._links(cursor, malformed):
            links.append(link)
            if first:
                cursor.close()
                break
        return links

    @staticmethod
    def _links(docs: Iterable[Mapping[str, Any]], malformed: list[str] | None) -> Iterator[Link]:
        for doc in docs:
            reason = problem(doc)
            if reason is not None and malformed is not None and reason is not BAD_HASH:
                malformed.append(describe(doc, reason))  # a bad hash: its own day names it
            if is_integer_seq(doc.get("seq")):
                yield Link(doc.get("seq"), doc.get("prevHash"), doc.get("hash"))

    def malformed_day_events(self, day: dt.date) -> list[str]:
        """The day's malformed chained events still in hot, named, reading every chained
        event of the day still there (cheap once its well-formed events are archived)."""
        docs = self.collection.find(day_filter(day), _NAMED_FIELDS).sort("seq", ASCENDING)
        return name_malformed(docs)

    def count_day_in_seq_range(self, day: dt.date, lo: int, hi: int) -> int:
        """The day's chained events still in hot with ``lo <= seq <= hi``: ``at`` first,
        so SecantusDB reads the day's events (the index on ``at``), not the seq range,
        which may hold millions of other days' events."""
        return self.collection.count_documents({**day_filter(day), "seq": {"$gte": lo, "$lte": hi}})

    def oldest_hot_seq(self) -> int | None:
        # Integer seqs only: a malformed event without one (null sorts first) is no bound.
        doc = self.collection.find_one(
            {**CHAINED, "seq": INTEGER_SEQ}, {"seq": 1}, sort=[("seq", ASCENDING)]
        )
        return None if doc is None else doc["seq"]

    def has_seq(self, seq: int) -> bool:
        """Whether an event with this seq is in hot (chained or not)."""
        return self.collection.count_documents({"seq": seq}, limit=1) > 0

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
        lo = self.collection.find_one(flt, fields, sort=[("seq", ASCENDING)])
        if lo is None:
            return None, None
        hi = self.collection.find_one(flt, fields, sort=[("seq", DESCENDING)])
        return lo, hi

    def chained_days(self, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.date, int]]:
        """Each UTC day with ``start <= at < end`` that has chained events in hot, with
        their count: one indexed hop per such day, not a scan of the events."""
        since = start
        while since < end:
            doc = self.collection.find_one(
                {"at": {"$gte": since, "$lt": end}, **CHAINED}, {"at": 1}, sort=[("at", ASCENDING)]
            )
            at = None if doc is None else doc.get("at")
            if not isinstance(at, dt.datetime):
                return
            day = at.astimezone(dt.UTC).date()
            yield day, self.collection.count_documents(day_filter(day))
            since = day_bounds(day)[1]

    def dayless_chained(self) -> list[str]:
        """Chained events whose ``at`` is missing or not a date, named: they belong to no
        day, so no day's run archives them (verify names them)."""
        flt = {"at": {"$not": {"$type": "date"}}, **CHAINED}
        return name_malformed(self.collection.find(flt, _NAMED_FIELDS).sort("seq", ASCENDING))

    # -- purge ------------------------------------------------------------------

    def delete_seq_run(
        self, day: dt.date, lo: int, hi: int, expected: int, fence: Fence | None = None
    ) -> bool:
        """Delete the day's chained events with lo <= seq <= hi, but only if exactly
        ``expected`` of them match: inside a transaction, aborted otherwise. With a
        ``fence``, the same transaction checks the lease (LeaseLost: nothing deleted)."""
        flt = {"seq": {"$gte": lo, "$lte": hi}, **day_filter(day)}

        def delete(session: Any) -> None:
            deleted = self.collection.delete_many(flt, session=session).deleted_count
            if deleted != expected:
                raise _CountMismatch  # aborts the transaction: nothing is deleted

        try:
            if fence is not None:
                self.leases.fenced(fence, delete)
                return True
            with self.collection.database.client.start_session() as session:
                # with_transaction retries transient transaction errors by itself.
                session.with_transaction(delete)
        except _CountMismatch:
            return False
        except OperationFailure as e:
            if e.code == 20 or "Transaction numbers are only allowed" in str(e):
                return False  # standalone server without transactions: exact ids
            raise
        return True

    def delete_ids(self, ids: Iterable[Any], fence: Fence | None = None) -> int:
        """Delete exactly these ids (the exact, slower path); with a ``fence``, in one
        transaction with the lease check (LeaseLost: nothing deleted)."""
        ops = [DeleteOne({"_id": i, **CHAINED}, hint="_id_") for i in ids]
        if not ops:
            return 0
        if fence is None:
            return self.collection.bulk_write(ops, ordered=False).deleted_count
        return self.leases.fenced(
            fence, lambda s: self.collection.bulk_write(ops, ordered=False, session=s).deleted_count
        )


def name_malformed(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The malformed ones among chained events, named (at most MALFORMED_LISTED, then
    how many more)."""
    out = [describe(doc, reason) for doc in docs if (reason := problem(doc)) is not None]
    if len(out) > MALFORMED_LISTED:
        out = [*out[:MALFORMED_LISTED], f"and {len(out) - MALFORMED_LISTED} more"]
    return out


class _CountMismatch(Exception):
    """Something besides the part's events matched a purge run."""

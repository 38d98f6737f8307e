"""What a run asks MongoDB about the events, counted from the driver's command
monitoring: commands, documents returned, and documents *examined* as SecantusDB
examines them (it reads every document the index selects for the filter's first field
an index serves, before it filters, sorts or limits; on MongoDB this is an upper
bound). Used by the test and the benchmark of issue 15 ("cost follows the day's own
events"): none of these may grow with the number of other days' events in the day's
seq span."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring

from audit_archive.format.malformed import is_integer_seq
from audit_archive.stores import clients

INDEXED_FIELDS = ("at", "seq")  # the archive's indexes lead with these (stores.events)


@dataclass
class EventQueries(monitoring.CommandListener):
    """Counts the commands on one collection and the documents they return."""

    collection: str
    commands: int = 0
    returned: int = 0
    filters: list[Mapping[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        name = event.command_name
        if name == "getMore":
            if command.get("collection") == self.collection:
                with self._lock:
                    self.commands += 1
            return
        if command.get(name) != self.collection:
            return
        found: list[Mapping[str, Any]] = []
        if name in ("find", "count"):
            found.append(command.get("filter") or command.get("query") or {})
        elif name == "aggregate":
            found += [s["$match"] for s in command.get("pipeline", ()) if "$match" in s][:1]
        elif name == "delete":
            found += [d.get("q") or {} for d in command.get("deletes", ())]
        with self._lock:
            self.commands += 1
            self.filters += found

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor") if isinstance(event.reply, Mapping) else None
        if not cursor or not str(cursor.get("ns", "")).endswith(f".{self.collection}"):
            return
        batch = cursor.get("firstBatch", cursor.get("nextBatch")) or ()
        with self._lock:
            self.returned += len(batch)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def examined(self, docs: Iterable[Mapping[str, Any]]) -> int:
        """Documents of ``docs`` (the collection before the run) that the filters' first
        indexed clauses select, summed over the filters: what SecantusDB reads."""
        docs = list(docs)
        seqs = sorted(d["seq"] for d in docs if is_integer_seq(d.get("seq")))
        ats = sorted(d["at"] for d in docs if isinstance(d.get("at"), dt.datetime))
        total = 0
        for flt in self.filters:
            first = next((k for k in flt if k in INDEXED_FIELDS), None)
            if "_id" in flt and first is None:
                total += 1 if flt["_id"] is not None else 0  # a point lookup
            elif first is not None:
                total += _selected(seqs if first == "seq" else ats, flt[first])
            else:
                total += len(seqs)  # no index serves it: a collection scan
        return total


def _selected(values: list[Any], clause: Any) -> int:
    """How many of the sorted ``values`` a clause on them selects (ranges and $in)."""
    if not isinstance(clause, Mapping):
        return _count(values, clause, clause)
    if "$in" in clause:
        return sum(_count(values, v, v) for v in clause["$in"])
    lo = clause.get("$gte", clause.get("$gt"))
    hi = clause.get("$lte", clause.get("$lt"))
    count = _count(values, lo, hi)
    if "$gt" in clause:
        count -= _count(values, lo, lo)
    if "$lt" in clause:
        count -= _count(values, hi, hi)
    return count


def _count(values: list[Any], lo: Any, hi: Any) -> int:
    start = 0 if lo is None else bisect.bisect_left(values, lo)
    end = len(values) if hi is None else bisect.bisect_right(values, hi)
    return max(0, end - start)


@contextmanager
def counting(collection: str) -> Iterator[EventQueries]:
    """Every MongoClient the archive creates meanwhile reports to the counter."""
    counter = EventQueries(collection)
    plain = clients.MongoClient

    def client(*args: Any, **kwargs: Any) -> Any:
        return plain(*args, event_listeners=[counter], **kwargs)

    clients.MongoClient = client  # type: ignore[misc]
    try:
        yield counter
    finally:
        clients.MongoClient = plain  # type: ignore[misc]

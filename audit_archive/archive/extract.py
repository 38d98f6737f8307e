"""Step 1: read the day's chained events from hot into the run's work directory, finish
any purge an earlier run left half done, and find the chain neighbours outside the day.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from audit_archive import timing
from audit_archive.archive import signed_log
from audit_archive.archive.encode import _iter_events
from audit_archive.archive.leases import LeaseKeeper, acquire_lease, release
from audit_archive.archive.results import PROGRESS_EVERY, Extracted, Log, Skip, _quiet
from audit_archive.audit.reader import PartReadError, PartStream
from audit_archive.errors import StorageError
from audit_archive.format import bsonpeek, layout
from audit_archive.format.chain import HEX64, Link
from audit_archive.stores.clients import Stores
from audit_archive.stores.hot import name_malformed

# -- step 1: extract ------------------------------------------------------------------

# Holes in a day's seqs are looked up seq by seq ($in) while they hold at most this many
# seqs, or as many as the day has events; beyond that one range query is cheaper.
HOLE_LOOKUP_MIN = 100_000


def _workdir(stores: Stores, day: str, owner: str) -> Path:
    root = Path(stores.settings.work_dir or tempfile.gettempdir()) / "audit-archive"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{day}-*"):  # earlier attempts at this day; we hold its lease
        if stale.name != f"{day}-{owner}":
            shutil.rmtree(stale, ignore_errors=True)
    path = root / f"{day}-{owner}"
    path.mkdir(exist_ok=True)
    return path


def extract(
    stores: Stores,
    day: dt.date,
    owner: str,
    now: dt.datetime,
    *,
    lease_wait_seconds: float = 600,
    log: Log = _quiet,
) -> Extracted | Skip:
    """Claim the day, finish any interrupted purge, and stage the next part's events."""
    day_text = layout.format_day(day)
    retention = stores.settings.retention_days
    if not layout.is_due(day, now, retention):
        due = layout.due_at(day, retention)
        return Skip(
            day_text,
            f"{day_text} is not due yet: it leaves the {retention}-day hot window at "
            f"{due:%Y-%m-%d %H:%M} UTC. Nothing was archived or deleted.",
        )
    hot = stores.hot
    hot.ensure_indexes()
    acquire_lease(stores, day_text, owner, lease_wait_seconds, log)
    try:
        with LeaseKeeper(stores, day_text, owner) as keeper:
            # Parts recorded but not yet in the signed log (the log just switched on, or a
            # run stopped before appending) are logged before anything leaves hot.
            signed_log.catch_up(stores, owner, log)
            recovered, recovered_deleted = _finish_interrupted_purges(stores, day, keeper, log)
            records = hot.records(day_text)
            part = max((r["part"] for r in records), default=0) + 1
            workdir = _workdir(stores, day_text, owner)
            events_path = workdir / f"part-{part:04d}.events.bson"
            neighbors_path = workdir / f"part-{part:04d}.neighbors.jsonl"
            staged = StagedSeqs()
            started = timing.clock()
            # The one read of the day's events: everything else extract asks the server
            # is an index lookup (SecantusDB answers a find with a pass over what the
            # index selects, so a second question about the day costs a second read).
            with open(events_path, "wb") as events_file:
                for batch in hot.iter_day_raw(day):
                    events_file.write(batch)
                    before = staged.count
                    staged.add(batch)
                    if staged.count // PROGRESS_EVERY != before // PROGRESS_EVERY:
                        log(f"extracted {staged.count:,} events of {day_text}")
            timing.add("read_decode", timing.clock() - started)
            malformed: list[str] = []
            if not staged.well_formed:
                # Nothing archivable (malformed events, if any, stay in hot): name them.
                malformed = name_malformed(_iter_events(str(events_path)))
                if records:
                    hot.release_lease(day_text, owner)
                    shutil.rmtree(workdir, ignore_errors=True)
                    parts = ", ".join(str(r["part"]) for r in records)
                    left = (
                        f" {len(malformed)} malformed event(s) stay in hot: {'; '.join(malformed)}"
                        if malformed
                        else ""
                    )
                    return Skip(
                        day_text,
                        f"{day_text} is already archived (part {parts}) and has no new events: "
                        f"nothing changed.{left}",
                        recovered,
                        recovered_deleted,
                        tuple(malformed),
                    )
                events_path.write_bytes(b"")  # the day's empty part 1 (SPEC 2)
                staged = StagedSeqs()
            predecessor = successor = None
            started = timing.clock()
            with open(neighbors_path, "w") as nb:
                if staged.lo is not None and staged.hi is not None:
                    lo, hi = staged.lo, staged.hi
                    foreign = (
                        hot.iter_links_in_holes(day, staged.iter_holes(), malformed)
                        if staged.hole_seqs <= max(HOLE_LOOKUP_MIN, staged.count)
                        else hot.iter_foreign_links(day, lo, hi, malformed)
                    )
                    archived = hot.archived_edges()
                    for link in _merge_links(foreign, (e for e in archived if lo <= e.seq <= hi)):
                        nb.write(json.dumps([link.seq, link.prev_hash, link.hash]) + "\n")
                    predecessor = _closest(
                        hot.hot_predecessor(lo), [e for e in archived if e.seq < lo], max
                    )
                    successor = _closest(
                        hot.hot_successor(hi), [e for e in archived if e.seq > hi], min
                    )
            timing.add("neighbours", timing.clock() - started)
            return Extracted(
                day=day_text,
                part=part,
                owner=owner,
                workdir=str(workdir),
                events_path=str(events_path),
                neighbors_path=str(neighbors_path),
                event_count=staged.count,
                start_seq=staged.lo,
                end_seq=staged.hi,
                predecessor=predecessor,
                successor=successor,
                recovered_parts=recovered,
                recovered_deleted=recovered_deleted,
                malformed=tuple(dict.fromkeys(malformed)),
            )
    except BaseException:
        release(stores, day_text, owner)
        raise


class StagedSeqs:
    """What extract learns of the staged events from their raw BSON, without decoding
    them: how many, the lowest and highest integer seq, the holes between consecutive
    integer seqs (where another day's events may sit in the chain), and whether any
    event is well-formed enough to archive (malformed.problem: an integer seq and a
    64-hex hash; the read's filter already guarantees a date ``at``)."""

    def __init__(self) -> None:
        self.count = 0
        self.lo: int | None = None
        self.hi: int | None = None
        self.holes = array("q")  # flat (below, above) pairs: 16 bytes a hole
        self.hole_seqs = 0  # seqs strictly inside the holes
        self.well_formed = False

    def add(self, batch: bytes) -> None:
        seqs = bsonpeek.int_seqs(batch)
        self.count += len(seqs)
        if not self.well_formed:  # checked until the first one: almost always once
            self.well_formed = any(
                seq is not None and HEX64.match(bsonpeek.string(batch, start, end, b"hash") or "")
                for seq, (start, end) in zip(seqs, bsonpeek.documents(batch), strict=True)
            )
        hi = self.hi
        for seq in seqs:
            if seq is None:
                continue
            if hi is None:
                self.lo = seq
            elif seq > hi + 1:
                self.holes.extend((hi, seq))
                self.hole_seqs += seq - hi - 1
            hi = seq
        self.hi = hi

    def iter_holes(self) -> Iterator[tuple[int, int]]:
        holes = self.holes
        return ((holes[i], holes[i + 1]) for i in range(0, len(holes), 2))


def _closest(hot_link: Link | None, archived: list[Link], pick: Callable) -> Link | None:
    candidates = [link for link in (hot_link, *archived[-1:], *archived[:1]) if link is not None]
    if not candidates:
        return None
    return pick(candidates, key=lambda link: link.seq)


def _merge_links(*streams: Iterator[Link]) -> Iterator[Link]:
    """Merge sorted link streams; the same event seen twice (recorded, purge pending) once."""
    last: Link | None = None
    for link in heapq.merge(*streams, key=lambda x: x.seq):
        if last is not None and link.seq == last.seq and link.hash == last.hash:
            continue
        last = link
        yield link


def _finish_interrupted_purges(
    stores: Stores, day: dt.date, keeper: LeaseKeeper, log: Log
) -> tuple[tuple[int, ...], int]:
    """A recorded part whose events are still in hot: an earlier run stopped mid-purge.
    Its membership is read back from the object (checksum verified against the record)."""
    hot = stores.hot
    day_text = layout.format_day(day)
    parts, deleted = [], 0
    for rec in hot.records(day_text):
        if not rec.get("eventCount"):
            continue
        if not hot.count_day_in_seq_range(day, rec["startSeq"], rec["endSeq"]):
            continue
        log(f"part {rec['part']} of {day_text} is recorded but still in hot: finishing its purge")
        signed_log.require_logged(stores, day_text, rec["part"])
        ids = list(_recorded_ids(stores, rec))
        keeper.check()
        for i in range(0, len(ids), stores.settings.purge_batch_size):
            deleted += hot.delete_ids(ids[i : i + stores.settings.purge_batch_size])
        parts.append(rec["part"])
    if parts:
        log(f"finished the interrupted purge of part(s) {parts}: {deleted:,} events deleted")
    return tuple(parts), deleted


def _recorded_ids(stores: Stores, record: dict[str, Any]) -> Iterator[Any]:
    stream = PartStream(stores.cold, record["jsonlKey"])
    ids = [doc["_id"] for doc in stream.events()]
    try:
        stream.check(record["jsonlSha256"], record["bytesCompressed"])
    except PartReadError as e:
        raise StorageError(
            f"{e}; its events were left in hot. Run audit-archive verify and investigate."
        ) from None
    return iter(ids)

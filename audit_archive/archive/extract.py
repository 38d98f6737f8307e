"""Step 1: read the day's chained events from hot into the run's work directory, finish
any purge an earlier run left half done, and find the chain neighbours outside the day.
"""

from __future__ import annotations

import datetime as dt
import shutil
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions

from audit_archive import timing
from audit_archive.archive import signed_log
from audit_archive.archive.leases import LeaseKeeper, acquire_lease, release
from audit_archive.archive.neighbours import Neighbours, find_neighbours
from audit_archive.archive.results import Extracted, PartRef, Skip
from audit_archive.errors import StorageError
from audit_archive.format import bsonpeek, layout, nativecodec
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS
from audit_archive.format.chain import HEX64
from audit_archive.progress import PROGRESS_EVERY, Log, quiet
from audit_archive.stores.clients import Stores, staging_root
from audit_archive.stores.events import EventStore, name_malformed
from audit_archive.stores.partstream import PartReadError, PartStream

# -- step 1: extract ------------------------------------------------------------------


def _workdir(stores: Stores, day: dt.date, owner: str) -> Path:
    root = staging_root(stores.settings)
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
    log: Log = quiet,
) -> Extracted | Skip:
    """Claim the day, finish any interrupted purge, and stage the next part's events.
    The lease is kept for the next steps, unless nothing is to be archived."""
    retention = stores.settings.retention_days
    if not layout.is_due(day, now, retention):
        due = layout.due_at(day, retention)
        return Skip(
            day,
            f"{day} is not due yet: it leaves the {retention}-day hot window at "
            f"{due:%Y-%m-%d %H:%M} UTC. Nothing was archived or deleted.",
        )
    stores.hot.ensure_indexes()
    lease = acquire_lease(stores, day, owner, lease_wait_seconds, log)
    try:
        with LeaseKeeper(stores, day, owner, lease.token, "extract_chained") as keeper:
            # Parts recorded but not yet in the signed log (the log just switched on, or a
            # run stopped before appending) are logged before anything leaves hot.
            signed_log.catch_up(stores, owner, log)
            return _extract_claimed(stores, day, owner, keeper, log)
    except BaseException:
        release(stores, day, owner, lease.token)
        raise


def _extract_claimed(
    stores: Stores, day: dt.date, owner: str, keeper: LeaseKeeper, log: Log
) -> Extracted | Skip:
    """extract, once the day is ours: recover, stage, find the neighbours."""
    recovered, recovered_deleted = _finish_interrupted_purges(stores, day, keeper, log)
    records = stores.batches.records(day)
    part = max((r["part"] for r in records), default=0) + 1
    ref = PartRef(day, part, owner, keeper.token, str(_workdir(stores, day, owner)))
    events_path = Path(ref.events_path)
    staged = _stage_events(stores.events, day, events_path, log)
    malformed: list[str] = []
    if not staged.well_formed:
        # Nothing archivable (malformed events, if any, stay in hot): name them.
        malformed = name_malformed(iter_staged_events(ref.events_path))
        if records:
            stores.leases.release_lease(day, owner, keeper.token)
            shutil.rmtree(ref.workdir, ignore_errors=True)
            return _nothing_new(day, records, malformed, recovered, recovered_deleted)
        events_path.write_bytes(b"")  # the day's empty part 1 (SPEC 2)
        staged = StagedSeqs()
    neighbours = _find_neighbours(stores, staged, Path(ref.neighbours_path), malformed)
    return Extracted(
        ref=ref,
        event_count=staged.count,
        start_seq=staged.lo,
        end_seq=staged.hi,
        predecessor=neighbours.predecessor,
        successor=neighbours.successor,
        recovered_parts=recovered,
        recovered_deleted=recovered_deleted,
        malformed=tuple(dict.fromkeys(malformed)),
    )


def iter_staged(
    path: str, codec_options: CodecOptions = EVENT_CODEC_OPTIONS
) -> Iterator[tuple[bytes, list[dict[str, Any]]]]:
    """The events _stage_events wrote, decoded a batch of about bsonpeek.READ_CHUNK
    bytes at a time (bounded memory, one decode call a batch), each batch with its BSON
    bytes as staged (the server's): encode decodes them for fastcodec, with its options."""
    for chunk in iter_staged_chunks(path):
        yield chunk, bson.decode_all(chunk, codec_options)


def iter_staged_chunks(path: str) -> Iterator[bytes]:
    """The staged BSON bytes, a batch of whole documents at a time, not decoded: encode
    hands each to the C encoder first (nativecodec) and decodes only what it refuses."""
    with open(path, "rb") as f:
        yield from bsonpeek.whole_documents(f)


def iter_staged_events(path: str) -> Iterator[dict[str, Any]]:
    """The staged events one by one, decoded as every reader decodes events."""
    for _, batch in iter_staged(path):
        yield from batch


def _stage_events(events: EventStore, day: dt.date, events_path: Path, log: Log) -> StagedSeqs:
    """The one read of the day's events, staged as the server's raw BSON: everything
    else extract asks the server is an index lookup (SecantusDB answers a find with a
    pass over what the index selects, so a second question about the day costs a
    second read)."""
    staged = StagedSeqs()
    started = timing.clock()
    with open(events_path, "wb") as events_file:
        for batch in events.iter_day_raw(day):
            events_file.write(batch)
            before = staged.count
            staged.add(batch)
            if staged.count // PROGRESS_EVERY != before // PROGRESS_EVERY:
                log(f"extracted {staged.count:,} events of {day}")
    timing.add("read_decode", timing.clock() - started)
    return staged


def _nothing_new(
    day: dt.date,
    records: list[dict[str, Any]],
    malformed: list[str],
    recovered: tuple[int, ...],
    recovered_deleted: int,
) -> Skip:
    parts = ", ".join(str(r["part"]) for r in records)
    left = (
        f" {len(malformed)} malformed event(s) stay in hot: {'; '.join(malformed)}"
        if malformed
        else ""
    )
    return Skip(
        day,
        f"{day} is already archived (part {parts}) and has no new events: nothing changed.{left}",
        recovered,
        recovered_deleted,
        tuple(malformed),
    )


def _find_neighbours(
    stores: Stores, staged: StagedSeqs, path: Path, malformed: list[str]
) -> Neighbours:
    """The chain neighbours of the staged events outside them (archive.neighbours)."""
    started = timing.clock()
    if staged.lo is None or staged.hi is None:
        path.write_text("")
        return Neighbours(None, None)
    found = find_neighbours(
        stores.events, stores.batches, staged.lo, staged.hi, staged.iter_holes(), path, malformed
    )
    timing.add("neighbours", timing.clock() - started)
    return found


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
        seqs = nativecodec.int_seqs(batch)  # in C; None: off, or a malformed document
        if seqs is None:
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


def _finish_interrupted_purges(
    stores: Stores, day: dt.date, keeper: LeaseKeeper, log: Log
) -> tuple[tuple[int, ...], int]:
    """A recorded part whose events are still in hot: an earlier run stopped mid-purge.
    Its membership is read back from the object (checksum verified against the record)."""
    parts, deleted = [], 0
    for rec in stores.batches.records(day):
        if not rec.get("eventCount"):
            continue
        if not stores.events.count_day_in_seq_range(day, rec["startSeq"], rec["endSeq"]):
            continue
        log(f"part {rec['part']} of {day} is recorded but still in hot: finishing its purge")
        signed_log.require_logged(stores, day, rec["part"])
        ids = list(_recorded_ids(stores, rec))
        keeper.check()
        batch = stores.settings.purge_batch_size
        for i in range(0, len(ids), batch):
            deleted += stores.events.delete_ids(ids[i : i + batch], keeper.fence)
            keeper.changes[:] = [
                f"deleted {deleted:,} events of recorded part(s) {[*parts, rec['part']]} from "
                "hot (all of them in their recorded, checksum-verified objects)"
            ]
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

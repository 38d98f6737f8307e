"""One day's archive, as the six steps the Dagster ops call.

Each step takes and returns a small frozen descriptor (paths, counts, hashes), never
events and never a secret, because Dagster pickles op outputs into its storage. Files
live in a per-run work directory that the steps of one run share (in-process executor).

Safety rules, in the order they bite:
- a day is claimed with a lease in Mongo before anything is written, and each step
  re-checks it, so racing runs of a day give one result;
- events are deleted only after their part is uploaded, confirmed and recorded, and
  only the events that part holds (seq runs checked by count inside a transaction, or
  exact _ids);
- a re-run first finishes any purge an earlier run left half done (membership read back
  from the recorded, checksum-verified object), then archives what is left as the next
  part, so every crash point converges.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import heapq
import json
import os
import shutil
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
from botocore.exceptions import ClientError
from bson.codec_options import CodecOptions

from audit_archive import timing
from audit_archive.audit.reader import PartReadError, PartStream
from audit_archive.errors import ChainBreakError, LeaseError, StorageError
from audit_archive.format import bsonpeek, fastcodec, layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS
from audit_archive.format.chain import HEX64, ChainTracker, Link
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS
from audit_archive.format.jsonl import GzipJsonlWriter
from audit_archive.format.malformed import describe as describe_malformed
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.malformed import problem as malformed_problem
from audit_archive.format.manifest import (
    PartSummary,
    build_manifest,
    key_id,
    manifest_bytes,
    sign_manifest,
)
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.stores.clients import Stores
from audit_archive.stores.cold import Confirmation, ObjectMismatch
from audit_archive.stores.hot import name_malformed

Log = Callable[[str], None]
PROGRESS_EVERY = 50_000
# Holes in a day's seqs are looked up seq by seq ($in) while they hold at most this many
# seqs, or as many as the day has events; beyond that one range query is cheaper.
HOLE_LOOKUP_MIN = 100_000
JSONL_CONTENT_TYPE = "application/gzip"
MANIFEST_CONTENT_TYPE = "application/json"


def _quiet(_: str) -> None:
    pass


# -- descriptors passed between ops ---------------------------------------------------


@dataclass(frozen=True)
class Extracted:
    day: str
    part: int
    owner: str
    workdir: str
    events_path: str
    neighbors_path: str
    event_count: int
    start_seq: int | None
    end_seq: int | None
    predecessor: Link | None
    successor: Link | None
    recovered_parts: tuple[int, ...] = ()
    recovered_deleted: int = 0
    malformed: tuple[str, ...] = ()  # chained events left in hot, named (malformed.py)


@dataclass(frozen=True)
class Encoded:
    extracted: Extracted
    summary: PartSummary
    jsonl_path: str | None
    runs_path: str
    malformed: tuple[str, ...] = ()  # extract's and encode's, named by _id


@dataclass(frozen=True)
class Signed:
    encoded: Encoded
    manifest_path: str
    manifest_key: str
    manifest_sha256: str
    manifest_bytes: int
    key_id: str


@dataclass(frozen=True)
class Uploaded:
    signed: Signed
    confirmations: tuple[Confirmation, ...]
    skipped_existing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recorded:
    uploaded: Uploaded
    record: dict[str, Any] = field(hash=False)
    inserted: bool


@dataclass(frozen=True)
class Purged:
    day: str
    part: int
    deleted: int
    batches: int
    exact_fallbacks: int


@dataclass(frozen=True)
class Skip:
    """Nothing to write for this day; ``reason`` says why (shown to the operator)."""

    day: str
    reason: str
    recovered_parts: tuple[int, ...] = ()
    recovered_deleted: int = 0
    malformed: tuple[str, ...] = ()


# -- leases -------------------------------------------------------------------------


class LeaseKeeper:
    """Holds the day's lease for the duration of a step, renewing it in the background.

    ``lost`` turns true if a renewal fails (another run took over after we stalled); the
    step checks it before every irreversible action.
    """

    def __init__(self, stores: Stores, day: str, owner: str) -> None:
        self.hot = stores.hot
        self.seconds = stores.settings.lease_seconds
        self.day, self.owner = day, owner
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.hot.renew_lease(self.day, self.owner, self.seconds):
                    self.lost = True
                    return
            except Exception:  # a blip: the next beat tries again before expiry
                continue

    def check(self) -> None:
        if self.lost or not self.hot.renew_lease(self.day, self.owner, self.seconds):
            self.lost = True
            raise LeaseError(
                f"run lost the lease on {self.day} (another run took it over); it stopped "
                "before changing anything further. Re-run the day if it is not archived."
            )

    def __enter__(self) -> LeaseKeeper:
        self.check()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="lease-renewal")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def acquire_lease(
    stores: Stores, day: str, owner: str, wait_seconds: float, log: Log = _quiet
) -> None:
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        lease = stores.hot.acquire_lease(day, owner, stores.settings.lease_seconds)
        if lease.owner == owner:
            return
        if time.monotonic() >= deadline:
            raise LeaseError(
                f"{day} is being archived by run {lease.owner} (on {lease.host}); it did not "
                f"finish within {wait_seconds:.0f}s. Wait for it, or re-run once it has ended."
            )
        if not announced:
            log(f"{day} is being archived by run {lease.owner}; waiting for it to finish")
            announced = True
        time.sleep(0.5)


# -- step 1: extract ------------------------------------------------------------------


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


# -- step 2: encode -----------------------------------------------------------------


def _read_neighbors(path: str) -> Iterator[Link]:
    with open(path) as f:
        for line in f:
            seq, prev_hash, hash_ = json.loads(line)
            yield Link(seq, prev_hash, hash_)


def _iter_events(path: str) -> Iterator[dict[str, Any]]:
    for batch in _iter_event_batches(path, EVENT_CODEC_OPTIONS):
        yield from batch


def _without_malformed(
    batch: list[dict[str, Any]], malformed: list[str], carry: list[Link]
) -> tuple[list[dict[str, Any]], dict[int, list[Link]]]:
    """The batch without its malformed events (named into ``malformed``: they stay in
    hot), and, by the position of the event that follows them, the gaps they leave: a
    purge run stops at a gap, and a malformed event with an integer seq is still a link
    of the chain there, checked like any event in hot. ``carry`` holds the links of
    malformed events at the end of a batch, for the next one (or the end)."""
    good: list[dict[str, Any]] = []
    gaps: dict[int, list[Link]] = {}
    gap = bool(carry)
    for doc in batch:
        reason = malformed_problem(doc)
        if reason is None:
            if gap:
                gaps[len(good)] = carry[:]
                carry.clear()
                gap = False
            good.append(doc)
        else:
            malformed.append(describe_malformed(doc, reason))
            if is_integer_seq(doc.get("seq")):
                carry.append(Link(doc["seq"], doc.get("prevHash"), doc.get("hash")))
            gap = True
    return (batch if len(good) == len(batch) else good), gaps


def _feed_in_order(
    tracker: ChainTracker,
    extra: list[Link],
    next_neighbor: Link | None,
    neighbors: Iterator[Link],
    upto: int | None,
) -> Link | None:
    """Feed ``extra`` links and the neighbours up to seq ``upto`` (all when None) to the
    tracker in seq order; returns the next neighbour not yet fed."""
    feed = list(extra)
    while next_neighbor is not None and (upto is None or next_neighbor.seq <= upto):
        feed.append(next_neighbor)
        next_neighbor = next(neighbors, None)
    for link in sorted(feed, key=lambda link: link.seq):
        tracker.add(link)
    return next_neighbor


def _iter_event_batches(
    path: str, codec_options: CodecOptions = FAST_CODEC_OPTIONS
) -> Iterator[list[dict[str, Any]]]:
    """The staged events decoded (for fastcodec by default), a batch of about
    bsonpeek.READ_CHUNK bytes at a time: bounded memory, one decode call a batch."""
    with open(path, "rb") as f:
        for chunk in bsonpeek.whole_documents(f):
            yield bson.decode_all(chunk, codec_options)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Encoding makes millions of short-lived, acyclic containers (the decoded events),
    freed by reference counting as each batch is let go. The cyclic collector would walk
    them, and every object Dagster holds, again and again for nothing: it roughly
    doubled the decoding time. It is back on as soon as the loop ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def encode(extracted: Extracted, prefix: str, batch_size: int, log: Log = _quiet) -> Encoded:
    """Stream staged events into JSONL.gz while checking the chain and building the
    Merkle root and chainEdges; raise ChainBreakError (after writing nothing to S3)."""
    x = extracted
    runs_path = os.path.join(x.workdir, f"part-{x.part:04d}.runs.json")
    if x.event_count == 0:
        Path(runs_path).write_text("[]")
        summary = PartSummary(x.day, x.part, 0, None, None, None, None, [], None, None, None, 0, 0)
        return Encoded(x, summary, None, runs_path, x.malformed)
    key = layout.jsonl_key(prefix, x.day, x.part)
    jsonl_path = os.path.join(x.workdir, f"part-{x.part:04d}.jsonl.gz")
    tracker = ChainTracker(x.predecessor)
    merkle = MerkleBuilder()
    runs: list[list[int]] = []  # [lo, hi, count]: seq runs with no foreign event inside
    first_prev = last_hash = start_seq = None
    neighbors = _read_neighbors(x.neighbors_path)
    next_neighbor = next(neighbors, None)
    in_run = False
    malformed = list(x.malformed)
    skipped = 0  # staged events left out of the part (malformed: left in hot)
    last_seq = last_id = None  # to name both events of a duplicate seq (a chain break)
    carry: list[Link] = []  # malformed chain links not yet fed to the tracker
    clock, sha256 = timing.clock, hashlib.sha256
    batches = _iter_event_batches(x.events_path)
    with GzipJsonlWriter(jsonl_path) as writer, _collector_paused():
        while True:
            # One bounded batch per step, so each phase is timed a few times per
            # thousand events (timing.py), not per event. The previous batch is let go
            # first, so only one is ever alive.
            batch = lines = rehashes = doc = None
            t0 = clock()
            batch = next(batches, None)
            t1 = clock()
            timing.add("read_decode", t1 - t0)
            if batch is None:
                break
            staged = len(batch)
            batch, gaps = _without_malformed(batch, malformed, carry)
            skipped += staged - len(batch)
            if not batch:
                in_run = False
                continue
            lines, canonicals = fastcodec.encode_batch(batch)
            t2 = clock()
            writer.write_encoded(lines)
            t3 = clock()
            rehashes = [sha256(canonical).hexdigest() for canonical in canonicals]
            merkle.add_all(doc["hash"] for doc in batch)  # well-formed: malformed.problem
            t4 = clock()
            for i, (doc, rehash) in enumerate(zip(batch, rehashes, strict=True)):
                seq = doc["seq"]
                if gaps and i in gaps:  # malformed events sat here (left in hot)
                    in_run = False
                    next_neighbor = _feed_in_order(tracker, gaps[i], next_neighbor, neighbors, seq)
                if seq == last_seq:
                    for dup in ({"_id": last_id, "seq": seq}, doc):
                        malformed.append(describe_malformed(dup, "duplicate seq"))
                last_seq, last_id = seq, doc.get("_id")
                while next_neighbor is not None and next_neighbor.seq <= seq:
                    tracker.add(next_neighbor)
                    in_run = False
                    next_neighbor = next(neighbors, None)
                stored = doc.get("hash")
                tracker.add(Link(seq, doc.get("prevHash"), stored, True), rehash == stored)
                if start_seq is None:
                    start_seq, first_prev = seq, doc.get("prevHash")
                last_hash = stored
                if in_run and runs[-1][2] < batch_size:
                    runs[-1][1] = seq
                    runs[-1][2] += 1
                else:
                    runs.append([seq, seq, 1])
                    in_run = True
            t5 = clock()
            timing.add("encode", t2 - t1)
            timing.add("compress", t3 - t2)
            timing.add("hash", t4 - t3)
            timing.add("chain", t5 - t4)
            if writer.lines // PROGRESS_EVERY != (writer.lines - len(batch)) // PROGRESS_EVERY:
                log(f"encoded {writer.lines:,} of {x.event_count:,} events of {x.day}")
        next_neighbor = _feed_in_order(tracker, carry, next_neighbor, neighbors, None)
        tracker.finish(x.successor)
        written = writer.close()
    if written.lines != x.event_count - skipped:
        raise StorageError(f"staged {x.event_count} events but encoded {written.lines}")
    if tracker.breaks:
        raise ChainBreakError(tracker.breaks, tuple(dict.fromkeys(malformed)))
    Path(runs_path).write_text(json.dumps(runs))
    summary = PartSummary(
        day=x.day,
        part=x.part,
        event_count=written.lines,
        start_seq=start_seq,
        end_seq=last_seq,  # the part's, not the staging's: malformed events stay in hot
        first_prev_hash=first_prev,
        last_hash=last_hash,
        chain_edges=tracker.edges,
        merkle_root=merkle.root(),
        jsonl_key=key,
        jsonl_sha256=written.sha256,
        jsonl_bytes=written.bytes,
        jsonl_bytes_uncompressed=written.bytes_uncompressed,
    )
    return Encoded(x, summary, jsonl_path, runs_path, tuple(dict.fromkeys(malformed)))


# -- step 3: sign ---------------------------------------------------------------------


def sign(encoded: Encoded, prefix: str, signing_key: str) -> Signed:
    started = timing.clock()
    s = encoded.summary
    manifest = sign_manifest(build_manifest(s), signing_key)
    data = manifest_bytes(manifest)
    key = layout.manifest_key(prefix, s.day, s.part)
    path = os.path.join(encoded.extracted.workdir, f"part-{s.part:04d}.manifest.json")
    Path(path).write_bytes(data)
    timing.add("sign", timing.clock() - started)
    return Signed(
        encoded, path, key, hashlib.sha256(data).hexdigest(), len(data), key_id(signing_key)
    )


# -- step 4: upload and confirm ----------------------------------------------------------


def upload_and_confirm(stores: Stores, signed: Signed, log: Log = _quiet) -> Uploaded:
    """Upload both objects (JSONL first, so a manifest never names a missing object) and
    confirm size and checksum. An identical object already there (an earlier attempt that
    crashed before recording) is confirmed, not rewritten."""
    s = signed.encoded.summary
    x = signed.encoded.extracted
    hot, cold = stores.hot, stores.cold
    with LeaseKeeper(stores, x.day, x.owner) as keeper:
        if any(r["part"] == s.part for r in hot.records(x.day)):
            raise StorageError(
                f"part {s.part} of {x.day} was recorded by another run while this one worked; "
                "nothing was uploaded or deleted. Re-run the day to converge."
            )
        _abort_stale_uploads(stores, signed.manifest_key.rsplit("/", 1)[0] + "/", x.day, log)
        objects = []
        if s.event_count:
            objects.append(
                (
                    s.jsonl_key,
                    signed.encoded.jsonl_path,
                    s.jsonl_bytes,
                    s.jsonl_sha256,
                    JSONL_CONTENT_TYPE,
                )
            )
        objects.append(
            (
                signed.manifest_key,
                signed.manifest_path,
                signed.manifest_bytes,
                signed.manifest_sha256,
                MANIFEST_CONTENT_TYPE,
            )
        )
        confirmations, skipped = [], []
        for key, path, size, sha, content_type in objects:
            keeper.check()
            try:
                with timing.timed("confirm"):
                    confirmations.append(cold.confirm(key, size, sha, path))
                skipped.append(key)
                log(f"{key} is already in the bucket with the same bytes; not rewritten")
                continue
            except ObjectMismatch:
                pass
            with timing.timed("upload"):
                cold.put_file(key, path, size, sha, content_type)
            try:
                with timing.timed("confirm"):
                    confirmations.append(cold.confirm(key, size, sha, path))
            except ObjectMismatch as e:
                raise StorageError(f"upload not confirmed: {e}; nothing was deleted") from None
    return Uploaded(signed, tuple(confirmations), tuple(skipped))


def _abort_stale_uploads(stores: Stores, day_prefix: str, day: str, log: Log) -> None:
    """A run killed in the middle of a multipart upload leaves it incomplete (billed,
    invisible). We hold the day's lease, so any upload under the day's prefix belongs
    to an earlier, dead attempt: abort it. Best effort: without the permission to list
    uploads, a bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans them up."""
    try:
        stale = stores.cold.incomplete_uploads(day_prefix)
    except ClientError as e:
        log(f"could not list incomplete uploads of {day} ({e.response['Error'].get('Code')})")
        return
    for upload in stale:
        stores.cold.abort_upload(upload["Key"], upload["UploadId"])
    if stale:
        log(f"aborted {len(stale)} incomplete upload(s) an earlier attempt at {day} left")


# -- step 5: record -----------------------------------------------------------------


def batch_record(uploaded: Uploaded, run_id: str, archived_at: dt.datetime) -> dict[str, Any]:
    signed = uploaded.signed
    s = signed.encoded.summary
    return {
        "day": s.day,
        "part": s.part,
        "archivedAt": archived_at,
        "runId": run_id,
        "startSeq": s.start_seq,
        "endSeq": s.end_seq,
        "eventCount": s.event_count,
        "jsonlKey": s.jsonl_key,
        "manifestKey": signed.manifest_key,
        "jsonlSha256": s.jsonl_sha256,
        "manifestSha256": signed.manifest_sha256,
        "bytesCompressed": s.jsonl_bytes,
        "bytesUncompressed": s.jsonl_bytes_uncompressed,
        # Beyond the SPEC's fields: what later runs need without reading S3.
        "merkleRoot": s.merkle_root,
        "chainEdges": s.chain_edges,
        "keyId": signed.key_id,
    }


def record(stores: Stores, uploaded: Uploaded, run_id: str) -> Recorded:
    x = uploaded.signed.encoded.extracted
    doc = batch_record(uploaded, run_id, dt.datetime.now(dt.UTC).replace(microsecond=0))
    with LeaseKeeper(stores, x.day, x.owner), timing.timed("record"):
        inserted = stores.hot.insert_record(doc)
    if not inserted:
        existing = next(r for r in stores.hot.records(x.day) if r["part"] == doc["part"])
        if existing.get("manifestSha256") != doc["manifestSha256"]:
            raise StorageError(
                f"part {doc['part']} of {x.day} is already recorded with a different "
                "manifest; nothing was deleted. Run audit-archive verify for the day."
            )
        doc = existing
    return Recorded(uploaded, doc, inserted)


# -- step 6: purge ------------------------------------------------------------------


def purge(stores: Stores, recorded: Recorded, log: Log = _quiet) -> Purged:
    """Delete exactly the recorded part's events from hot, in bounded batches."""
    x = recorded.uploaded.signed.encoded.extracted
    runs = json.loads(Path(recorded.uploaded.signed.encoded.runs_path).read_text())
    deleted = fallbacks = 0
    day = layout.parse_day(x.day)
    with LeaseKeeper(stores, x.day, x.owner) as keeper, timing.timed("purge"):
        for i, (lo, hi, count) in enumerate(runs, 1):
            keeper.check()
            if stores.hot.delete_seq_run(day, lo, hi, count):
                deleted += count
            else:  # something else matches the run (or no transactions): exact ids
                fallbacks += 1
                deleted += stores.hot.delete_ids(_ids_in_run(x.events_path, lo, hi))
            if i % 20 == 0:
                log(f"purged {deleted:,} of {x.event_count:,} events of {x.day}")
    release(stores, x.day, x.owner)
    shutil.rmtree(x.workdir, ignore_errors=True)
    return Purged(x.day, x.part, deleted, len(runs), fallbacks)


def _ids_in_run(events_path: str, lo: int, hi: int) -> list[Any]:
    return [d["_id"] for d in _iter_events(events_path) if lo <= d["seq"] <= hi]


def release(stores: Stores, day: str, owner: str) -> None:
    try:
        stores.hot.release_lease(day, owner)
    except Exception:  # the lease expires by itself
        pass

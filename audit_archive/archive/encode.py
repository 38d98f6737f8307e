"""Step 2: the JSONL lines, the hashed bodies, the chain checks and the Merkle tree, in
one streaming pass over the extracted events.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import lt
from pathlib import Path
from typing import Any, NamedTuple

import bson

from audit_archive import timing
from audit_archive.archive.extract import iter_staged_chunks
from audit_archive.archive.results import Encoded, Extracted
from audit_archive.archive.staged import LazyDocuments, raw_of
from audit_archive.errors import ChainBreakError, StorageError
from audit_archive.format import fastcodec, layout, nativecodec
from audit_archive.format.chain import ChainTracker, Link
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS
from audit_archive.format.jsonl import GzipJsonlWriter, WrittenFile
from audit_archive.format.malformed import all_usual, is_integer_seq
from audit_archive.format.malformed import describe as describe_malformed
from audit_archive.format.malformed import problem as malformed_problem
from audit_archive.format.manifest import (
    PartSummary,
)
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.format.nativecodec import Columns
from audit_archive.progress import PROGRESS_EVERY, Log, quiet

# -- step 2: encode -----------------------------------------------------------------


def _read_neighbours(path: str) -> Iterator[Link]:
    with open(path) as f:
        for line in f:
            seq, prev_hash, hash_ = json.loads(line)
            yield Link(seq, prev_hash, hash_)


def _columns(batch: list[dict[str, Any]]) -> Columns:
    return Columns(
        [d.get("seq") for d in batch],
        [d.get("prevHash") for d in batch],
        [d.get("hash") for d in batch],
    )


class _Staged(NamedTuple):
    """One staged chunk, encoded: its well-formed events (decoded, or decoded on demand
    when the C encoder took the chunk), the gaps malformed events left, their columns,
    their lines joined and their re-hashes."""

    batch: Sequence[dict[str, Any]]
    gaps: dict[int, list[Link]]
    columns: Columns
    joined: bytes
    rehashes: list[str]


def _without_malformed(
    batch: list[dict[str, Any]], malformed: list[str], carry: list[Link]
) -> tuple[list[dict[str, Any]], dict[int, list[Link]], list[int] | None]:
    """The batch without its malformed events (named into ``malformed``: they stay in
    hot), and, by the position of the event that follows them, the gaps they leave: a
    purge run stops at a gap, and a malformed event with an integer seq is still a link
    of the chain there, checked like any event in hot. ``carry`` holds the links of
    malformed events at the end of a batch, for the next one (or the end). Last, the
    staged positions of the events kept (None when all are)."""
    good: list[dict[str, Any]] = []
    kept: list[int] = []
    gaps: dict[int, list[Link]] = {}
    gap = bool(carry)
    for position, doc in enumerate(batch):
        reason = malformed_problem(doc)
        if reason is None:
            if gap:
                gaps[len(good)] = carry[:]
                carry.clear()
                gap = False
            good.append(doc)
            kept.append(position)
        else:
            malformed.append(describe_malformed(doc, reason))
            if is_integer_seq(doc.get("seq")):
                carry.append(Link(doc["seq"], doc.get("prevHash"), doc.get("hash")))
            gap = True
    if len(good) == len(batch):
        return batch, gaps, None
    return good, gaps, kept


def _feed_in_order(
    tracker: ChainTracker,
    extra: list[Link],
    next_neighbour: Link | None,
    neighbours: Iterator[Link],
    upto: int | None,
) -> Link | None:
    """Feed ``extra`` links and the neighbours up to seq ``upto`` (all when None) to the
    tracker in seq order; returns the next neighbour not yet fed."""
    feed = list(extra)
    while next_neighbour is not None and (upto is None or next_neighbour.seq <= upto):
        feed.append(next_neighbour)
        next_neighbour = next(neighbours, None)
    for link in sorted(feed, key=lambda link: link.seq):
        tracker.add(link)
    return next_neighbour


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


class _Part:
    """One part's encoding state, carried from batch to batch: the chain tracker, the
    Merkle builder, the seq runs for the purge, the cursor over other days' events in
    the holes (neighbours), and what is named or counted on the way."""

    def __init__(self, x: Extracted, batch_size: int) -> None:
        self.x = x
        self.batch_size = batch_size
        self.tracker = ChainTracker(x.predecessor)
        self.merkle = MerkleBuilder()
        self.runs: list[list[int]] = []  # [lo, hi, count]: seq runs with no foreign event
        self.in_run = False
        self.start_seq: int | None = None
        self.first_prev = self.last_hash = None
        self.last_seq = self.last_id = None  # to name both events of a duplicate seq
        self.neighbours = _read_neighbours(x.ref.neighbours_path)
        self.next_neighbour = next(self.neighbours, None)
        self.malformed = list(x.malformed)
        self.carry: list[Link] = []  # malformed chain links not yet fed to the tracker
        self.skipped = 0  # staged events left out of the part (malformed: left in hot)
        self.as_bson = 0  # lines written in the {"bson": ...} form (SPEC 3)

    def well_formed(
        self, batch: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[int, list[Link]], list[int] | None, Columns]:
        """The batch without its malformed events (named, left in hot): _without_malformed;
        and the ``seq``, ``prevHash`` and ``hash`` of those kept, a list each. Nearly
        every batch has no malformed event, which the columns show at once."""
        columns = _columns(batch)
        if not self.carry and all_usual(columns.seqs, [d.get("at") for d in batch], columns.hashes):
            return batch, {}, None, columns
        good, gaps, kept = _without_malformed(batch, self.malformed, self.carry)
        self.skipped += len(batch) - len(good)
        if not good:
            self.in_run = False
        return good, gaps, kept, columns if kept is None else _columns(good)

    def lines(
        self, batch: list[dict[str, Any]], chunk: bytes, kept: list[int] | None
    ) -> tuple[bytes, int, list[str]]:
        """The batch's JSONL lines joined, their number, and each event's re-hash; a line
        that does not read back as its document is its ``{"bson": ...}`` form (SPEC 3)."""
        encoded = fastcodec.encode_batch(batch)
        raw = raw_of(chunk, kept)
        unproven = fastcodec.lines_to_check(encoded, batch, chunk if kept is None else None, raw)
        joined, replaced = fastcodec.make_readable(encoded.joined, unproven, encoded.rehashes, raw)
        self.as_bson += replaced
        return joined, len(batch), encoded.rehashes

    def native(self, chunk: bytes) -> _Staged | None:
        """A chunk the C encoder takes (nativecodec; None when it refuses it, or when
        malformed links are carried: their gap needs the Python path): its documents,
        decoded only when asked for, its columns, its lines joined (SPEC 3's read-back
        done, as in ``lines``) and its re-hashes. Every event it takes is well formed
        (malformed.problem passes it at once), so the batch is whole."""
        native = None if self.carry else nativecodec.encode_chunk(chunk)
        if native is None:
            return None
        encoded = native.batch
        documents = LazyDocuments(chunk, len(encoded.rehashes))
        joined, replaced = fastcodec.make_readable(
            encoded.joined, encoded.unproven, encoded.rehashes, documents.raw
        )
        self.as_bson += replaced
        return _Staged(documents, {}, native.columns, joined, encoded.rehashes)

    def encode_chunk(self, chunk: bytes) -> _Staged | None:
        """A staged chunk's well-formed events, encoded: by the C encoder when it takes
        the chunk (``native``), else decoded and encoded by the Python path
        (``well_formed``, ``lines``). None when no event of it is well formed. Times
        the decode as "read_decode" and the rest as "encode" (timing.py)."""
        clock = timing.clock
        t0 = clock()
        staged = self.native(chunk)
        t1 = clock()
        if staged is None:
            decoded = bson.decode_all(chunk, FAST_CODEC_OPTIONS)
            t2 = clock()
            timing.add("read_decode", t2 - t1)
            batch, gaps, kept, columns = self.well_formed(decoded)
            if batch:
                joined, _, rehashes = self.lines(batch, chunk, kept)
                staged = _Staged(batch, gaps, columns, joined, rehashes)
            t1 += clock() - t2
        timing.add("encode", t1 - t0)
        return staged

    def chain(
        self,
        batch: Sequence[dict[str, Any]],
        rehashes: list[str],
        gaps: dict[int, list[Link]],
        columns: Columns,
    ) -> None:
        """Each event in seq order: fed to the chain tracker with the neighbours and the
        malformed links before it, duplicates named, seq runs extended (_one_by_one).
        A batch whose events after the first link to each other, re-hash, ascend and
        have no neighbour between them (nearly every batch) is checked a column at a
        time: the first event one by one, the others at once."""
        seqs, prevs, hashes = columns
        n = len(batch)
        if gaps or n < 3 or rehashes != hashes or prevs[1:] != hashes[:-1]:
            self._one_by_one(batch, rehashes, gaps, 0, n)
            return
        self._one_by_one(batch, rehashes, gaps, 0, 1)
        later = self.next_neighbour
        if (later is not None and later.seq <= seqs[-1]) or not all(map(lt, seqs, seqs[1:])):
            self._one_by_one(batch, rehashes, gaps, 1, n)
            return
        self.tracker.extend_linked(
            Link(seqs[1], prevs[1], hashes[1], True), Link(seqs[-1], prevs[-1], hashes[-1], True)
        )
        self._extend_runs(seqs, 1)
        self.last_seq, self.last_id, self.last_hash = seqs[-1], batch[-1].get("_id"), hashes[-1]

    def _extend_runs(self, seqs: list[int], lo: int) -> None:
        """The seq runs for the purge over ``seqs[lo:]``, events with nothing between
        them: as _one_by_one extends them an event at a time, at most batch_size each."""
        runs, size, i, n = self.runs, self.batch_size, lo, len(seqs)
        if self.in_run and runs[-1][2] < size:
            take = min(size - runs[-1][2], n - i)
            runs[-1][1] = seqs[i + take - 1]
            runs[-1][2] += take
            i += take
        while i < n:
            take = min(size, n - i)
            runs.append([seqs[i], seqs[i + take - 1], take])
            i += take
        self.in_run = True

    def _one_by_one(
        self,
        batch: Sequence[dict[str, Any]],
        rehashes: list[str],
        gaps: dict[int, list[Link]],
        lo: int,
        hi: int,
    ) -> None:
        """Events ``lo`` to ``hi`` of the batch, one at a time (the state in locals)."""
        tracker, runs, batch_size = self.tracker, self.runs, self.batch_size
        neighbours, next_neighbour, in_run = self.neighbours, self.next_neighbour, self.in_run
        last_seq, last_id = self.last_seq, self.last_id
        stored = self.last_hash
        for i in range(lo, hi):
            doc, rehash = batch[i], rehashes[i]
            seq = doc["seq"]
            if gaps and i in gaps:  # malformed events sat here (left in hot)
                in_run = False
                next_neighbour = _feed_in_order(tracker, gaps[i], next_neighbour, neighbours, seq)
            if seq == last_seq:
                for dup in ({"_id": last_id, "seq": seq}, doc):
                    self.malformed.append(describe_malformed(dup, "duplicate seq"))
            last_seq, last_id = seq, doc.get("_id")
            while next_neighbour is not None and next_neighbour.seq <= seq:
                tracker.add(next_neighbour)
                in_run = False
                next_neighbour = next(neighbours, None)
            stored = doc.get("hash")
            tracker.add(Link(seq, doc.get("prevHash"), stored, True), rehash == stored)
            if self.start_seq is None:
                self.start_seq, self.first_prev = seq, doc.get("prevHash")
            if in_run and runs[-1][2] < batch_size:
                runs[-1][1] = seq
                runs[-1][2] += 1
            else:
                runs.append([seq, seq, 1])
                in_run = True
        self.next_neighbour, self.in_run = next_neighbour, in_run
        self.last_seq, self.last_id, self.last_hash = last_seq, last_id, stored

    def finish(self) -> None:
        """The links after the last event: malformed ones carried, the neighbours left,
        the successor."""
        _feed_in_order(self.tracker, self.carry, self.next_neighbour, self.neighbours, None)
        self.tracker.finish(self.x.successor)

    def summary(self, key: str, written: WrittenFile) -> PartSummary:
        """The part's summary for its manifest; raises when the chain broke or an event
        was lost on the way (nothing is uploaded then)."""
        x = self.x
        if written.lines != x.event_count - self.skipped:
            raise StorageError(f"staged {x.event_count} events but encoded {written.lines}")
        if self.tracker.breaks:
            raise ChainBreakError(self.tracker.breaks, tuple(dict.fromkeys(self.malformed)))
        return PartSummary(
            day=layout.format_day(x.ref.day),
            part=x.ref.part,
            event_count=written.lines,
            start_seq=self.start_seq,
            end_seq=self.last_seq,  # the part's, not the staging's: malformed stay in hot
            first_prev_hash=self.first_prev,
            last_hash=self.last_hash,
            chain_edges=self.tracker.edges,
            merkle_root=self.merkle.root(),
            jsonl_key=key,
            jsonl_sha256=written.sha256,
            jsonl_bytes=written.bytes,
            jsonl_bytes_uncompressed=written.bytes_uncompressed,
        )


def encode(extracted: Extracted, prefix: str, batch_size: int, log: Log = quiet) -> Encoded:
    """Stream staged events into JSONL.gz while checking the chain and building the
    Merkle root and chainEdges; raise ChainBreakError (after writing nothing to S3).

    One bounded batch per step, so each phase is timed a few times per thousand events
    (timing.py), not per event. The previous batch is let go first, so only one is ever
    alive."""
    x, ref = extracted, extracted.ref
    runs_path = ref.runs_path
    if x.event_count == 0:
        Path(runs_path).write_text("[]")
        day = layout.format_day(ref.day)
        summary = PartSummary(day, ref.part, 0, None, None, None, None, [], None, None, None, 0, 0)
        return Encoded(ref, summary, x.malformed)
    jsonl_path = ref.jsonl_path
    part = _Part(x, batch_size)
    clock = timing.clock
    chunks = iter_staged_chunks(ref.events_path)
    with GzipJsonlWriter(jsonl_path) as writer, _collector_paused():
        while True:
            chunk = staged = batch = joined = rehashes = None  # the previous one let go first
            t0 = clock()
            chunk = next(chunks, None)
            timing.add("read_decode", clock() - t0)
            if chunk is None:
                break
            staged = part.encode_chunk(chunk)  # times "encode" (and "read_decode")
            if staged is None:
                continue
            batch, gaps, columns, joined, rehashes = staged
            count = len(rehashes)
            t2 = clock()
            writer.write_encoded(joined, count)
            t3 = clock()
            part.merkle.add_all(columns.hashes)  # well-formed: malformed.py
            t4 = clock()
            part.chain(batch, rehashes, gaps, columns)
            timing.add("compress", t3 - t2)
            timing.add("hash", t4 - t3)
            timing.add("chain", clock() - t4)
            if writer.lines // PROGRESS_EVERY != (writer.lines - count) // PROGRESS_EVERY:
                log(f"encoded {writer.lines:,} of {x.event_count:,} events of {ref.day}")
        part.finish()
        written = writer.close()
    if part.as_bson:
        log(f'{part.as_bson:,} events of {ref.day} written as {{"bson": ...}} lines (SPEC 3)')
    summary = part.summary(layout.jsonl_key(prefix, ref.day, ref.part), written)
    Path(runs_path).write_text(json.dumps(part.runs))
    return Encoded(ref, summary, tuple(dict.fromkeys(part.malformed)))

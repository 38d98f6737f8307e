"""``--deep``: every events object streamed through the shared part reader (bounded
memory: one chunk and one line at a time), every line decoded by ``parse_line`` (so the
``{"bson": ...}`` form of SPEC 3 too), every event re-hashed, every link inside the part
checked, and the manifest's counts, bounds, chainEdges and Merkle root recomputed."""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from audit_archive.audit.verify.chain_walk import Break, Gap, Point, ints
from audit_archive.audit.verify.checks import norm_edges
from audit_archive.audit.verify.parts import Part
from audit_archive.audit.verify.report import Status
from audit_archive.errors import format_seq_ranges
from audit_archive.format import layout
from audit_archive.format.canonical import ZERO_HASH, event_hash
from audit_archive.format.chain import HEX64
from audit_archive.format.jsonl import parse_line
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.stores.clients import Stores
from audit_archive.stores.partstream import PartStream


@dataclass
class DeepResult:
    bytes: int = 0
    gaps: list[Gap] = field(default_factory=list)


class CountingCold:
    """The cold store as PartStream reads it, reporting bytes as they arrive."""

    def __init__(self, cold: Any, report: Callable[[int], None]) -> None:
        self._cold = cold
        self._report = report

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        for chunk in self._cold.iter_chunks(key):
            self._report(len(chunk))
            yield chunk


@dataclass
class ContentScan:
    """What one part's events say about themselves, gathered line by line."""

    day: dt.date
    source: tuple[dt.date, int]
    seen: Callable[[Any], None] = lambda seq: None  # every seq read (duplicates across parts)
    merkle: MerkleBuilder = field(default_factory=MerkleBuilder)
    count: int = 0
    uncompressed: int = 0
    first_prev: Any = None
    first_seq: Any = None
    last_hash: Any = None
    last_seq: Any = None
    edges: list[tuple[Any, Any, Any]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    bad_hash: list[Any] = field(default_factory=list)
    disorder: list[Any] = field(default_factory=list)
    off_day: list[Any] = field(default_factory=list)
    _prev: Point | None = None
    _prev_edge: bool = False

    def add(self, line: bytes) -> None:
        self.uncompressed += len(line) + 1
        doc = parse_line(line)  # every line, the {"bson": ...} form too (SPEC 3)
        seq, stored = doc.get("seq"), doc.get("hash")
        self.count += 1
        self.seen(seq)
        if event_hash(doc) != stored:
            self.bad_hash.append(seq)
        at = doc.get("at")
        if not isinstance(at, dt.datetime) or layout.as_utc(at).date() != self.day:
            self.off_day.append(seq)
        self.merkle.add(stored if isinstance(stored, str) and HEX64.match(stored) else ZERO_HASH)
        self._link(Point(seq, doc.get("prevHash"), stored, self.source, self.day))

    def _link(self, point: Point) -> None:
        prev, edge = self._prev, False
        if prev is None:
            self.first_prev, self.first_seq, edge = point.prev_hash, point.seq, True
        else:
            if (
                not (is_integer_seq(point.seq) and is_integer_seq(prev.seq))
                or point.seq <= prev.seq
            ):
                self.disorder.append(point.seq)
            if point.prev_hash != prev.hash:
                self._prev_edge = edge = True
                self.gaps.append(Gap(prev, point))
            if self._prev_edge:
                self.edges.append((prev.seq, prev.prev_hash, prev.hash))
        self._prev, self._prev_edge = point, edge
        self.last_hash, self.last_seq = point.hash, point.seq

    def finish(self) -> None:
        if self._prev is not None:
            p = self._prev
            self.edges.append((p.seq, p.prev_hash, p.hash))

    def claims(self) -> dict[str, Any]:
        """The manifest's fields as the content has them."""
        return {
            "eventCount": self.count,
            "startSeq": self.first_seq,
            "endSeq": self.last_seq,
            "firstPrevHash": self.first_prev,
            "lastHash": self.last_hash,
            "merkleRoot": self.merkle.root() if self.count else None,
            "bytesUncompressed": self.uncompressed,
        }


def deep_check(
    stores: Stores, p: Part, report: Callable[[int], None], seen: Callable[[Any], None]
) -> DeepResult:
    """Stream one events object and check it against its manifest and record."""
    stream = PartStream(CountingCold(stores.cold, report), p.jsonl_key)  # type: ignore[arg-type]
    scan = ContentScan(p.day, p.source, seen)
    try:
        for line in stream.raw_lines():
            scan.add(line)
        scan.finish()
    except (BotoCoreError, ClientError):
        raise  # the store failed us: an error (exit 2), not a finding about the archive
    except Exception as e:  # zlib.error, bad JSON or Extended JSON, a gzip CRC mismatch
        p.add(Status.MODIFIED, f"{p.jsonl_key} cannot be read as gzip JSONL: {describe(e)}")
        return DeepResult(stream.bytes)
    for whose, sha in p.expected_sha256():
        if sha is not None and sha != stream.sha256:
            p.add(Status.MODIFIED, f"{p.jsonl_key}'s sha256 differs from {whose}")
    _report_events(p, scan)
    if p.manifest:
        _compare_manifest(p, scan)
    return DeepResult(stream.bytes, scan.gaps)


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _report_events(p: Part, scan: ContentScan) -> None:
    if scan.bad_hash:
        p.add(
            Status.MODIFIED,
            f"{len(scan.bad_hash)} event(s) do not re-hash to their hash: seq "
            f"{seqs_text(scan.bad_hash)}",
            ints(scan.bad_hash),
        )
    if scan.disorder:
        p.add(Status.MODIFIED, f"events are not in ascending seq at seq {seqs_text(scan.disorder)}")
    if scan.off_day:
        p.add(
            Status.MODIFIED,
            f"{len(scan.off_day)} event(s) have an `at` outside {p.day}: seq "
            f"{seqs_text(scan.off_day)}",
            ints(scan.off_day),
        )


def _compare_manifest(p: Part, scan: ContentScan) -> None:
    m = p.manifest or {}
    content = scan.claims()
    claimed = {
        **{k: m.get(k) for k in content},
        "bytesUncompressed": p.jsonl_meta.get("bytesUncompressed"),
    }
    differ = [k for k in content if claimed[k] != content[k]]
    if norm_edges(m.get("chainEdges")) != scan.edges:
        differ.append("chainEdges")
    if differ:
        p.add(Status.MODIFIED, "the manifest does not match the content on " + ", ".join(differ))


def seqs_text(seqs: Sequence[Any]) -> str:
    whole = sorted(set(ints(seqs)))
    text = format_seq_ranges(whole[:200]) + (" ..." if len(whole) > 200 else "")
    return text if len(whole) == len(seqs) else f"{text} (and events without an integer seq)"


class SeqOverlaps:
    """Seqs read from two parts: where parts' seq ranges overlap (late events make that
    normal), the seqs read there are kept, so a seq archived twice is found."""

    def __init__(self, parts: Sequence[Part]) -> None:
        ranges = sorted((*r, p.source) for p in parts if (r := p.seq_range) is not None)
        windows: dict[tuple[dt.date, int], list[tuple[int, int]]] = defaultdict(list)
        for i, (lo, hi, source) in enumerate(ranges):
            for lo2, hi2, source2 in ranges[i + 1 :]:
                if lo2 > hi:
                    break
                both = (max(lo, lo2), min(hi, hi2))
                windows[source].append(both)
                windows[source2].append(both)
        self._windows = {source: _merged(ws) for source, ws in windows.items()}
        self._found: dict[int, set[tuple[dt.date, int]]] = defaultdict(set)
        self._lock = threading.Lock()

    def watcher(self, source: tuple[dt.date, int]) -> Callable[[Any], None]:
        windows = self._windows.get(source)
        if not windows:
            return lambda seq: None
        starts = [lo for lo, _ in windows]

        def seen(seq: Any) -> None:
            if is_integer_seq(seq):
                i = bisect.bisect_right(starts, seq) - 1
                if i >= 0 and seq <= windows[i][1]:
                    with self._lock:
                        self._found[int(seq)].add(source)

        return seen

    def breaks(self, known: set[int]) -> list[Break]:
        """A chain break per seq held by two parts (not already found from the edges)."""
        out = []
        for seq, sources in sorted(self._found.items()):
            if len(sources) > 1 and seq not in known:
                sides = tuple(Point(seq, None, None, s, s[0]) for s in sorted(sources))
                where = " and ".join(f"{s[0]} part {s[1]}" for s in sorted(sources))
                out.append(
                    Break(f"seq {seq} is archived in more than one part: {where}", (seq,), sides)
                )
        return out


def _merged(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(windows):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


Progress = Callable[[int, int, int, int], None]  # bytes done, bytes total, parts done, total


@dataclass
class ContentRead:
    bytes: int = 0
    gaps: list[Gap] = field(default_factory=list)
    duplicates: list[Break] = field(default_factory=list)


def read_contents(
    stores: Stores, parts: Sequence[Part], workers: int, progress: Progress | None, known: set[int]
) -> ContentRead:
    """--deep: every part with events read, concurrently, with a progress report."""
    readable = [p for p in parts if p.jsonl_object is not None and p.event_count]
    total = sum(p.jsonl_object.size for p in readable if p.jsonl_object)
    overlaps = SeqOverlaps(readable)
    lock = threading.Lock()
    state = {"bytes": 0, "parts": 0}

    def advance(n: int, part_done: bool = False) -> None:
        with lock:
            state["bytes"] += n
            state["parts"] += part_done
            snapshot = (state["bytes"], total, state["parts"], len(readable))
        if progress is not None:
            progress(*snapshot)

    def one(p: Part) -> DeepResult:
        result = deep_check(stores, p, advance, overlaps.watcher(p.source))
        advance(0, True)
        return result

    if progress is not None:
        progress(0, total, 0, len(readable))
    out = ContentRead()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="deep") as pool:
        for result in pool.map(one, readable):
            out.bytes += result.bytes
            out.gaps += result.gaps
    out.duplicates = overlaps.breaks(known)
    return out

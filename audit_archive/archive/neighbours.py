"""The chain neighbours of a part's events that are not in the part (step 1, extract).

Where they can be. The part holds the day's chained events in hot, read in one pass.
Between two of them that are consecutive by seq (a *hole*), other chained events may
sit: other days' late events (SPEC 1), in hot or already archived by their own run. The
chain check needs two of them: the lowest (the successor of the part's event below the
hole) and the highest (the predecessor of the event above); the links among them are
their own day's to check. Below the part's first event and above its last, it needs
the nearest chained event on each side.

How they are found: by index lookups bounded by the part's own events, never by reading
the span between them (issue 15: tens of millions of events may lie in one hole). The
seq next to each end of every hole is probed first, all holes at once in ``$in`` lists
(one index lookup per seq, reading only an event found there); a hole of a few seqs
(burned ones, mostly) is probed whole. Only where those seqs were burned (no event) does the search go on, in
windows that grow ``GROWTH`` times a round (all holes still at once), as ranges once
wide: a window reads what it selects, at most ~``GROWTH`` times the burned seqs next to
the hole's end.

Archived neighbours. A neighbour that its own day's run archived is an edge of its part
(its predecessor or successor, one of ours, is not in that part), so the recorded
parts' ``chainEdges`` hold it.

Races with other days' runs (issue 17). Such a run records its part, then purges its
events. So hot is read first and the records after: a neighbour missing from the hot
reads was purged before them, so recorded before, so it is in the records read next.
(Records first, then hot, misses one recorded and purged in between: the false chain
breaks of a concurrent backfill.) An earlier read of the records only narrows the
searches: an archived event just below the part's first one bounds where its
predecessor can be, and archived events inside a hole bound where its lowest and highest
events in hot can be.
"""

from __future__ import annotations

import bisect
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TextIO

from pymongo import ASCENDING, DESCENDING

from audit_archive.format.chain import Link
from audit_archive.stores.batches import BatchStore
from audit_archive.stores.events import EventStore

FIRST_WINDOW = 1  # seqs probed first at each end of a hole
WHOLE_HOLE = 8  # a hole of at most this many seqs (mostly burned ones) is probed whole
GROWTH = 4  # each further round probes this many times more seqs
POINT_WINDOW_MAX = 64  # windows up to this many seqs are $in lists, wider ones ranges
UNBOUNDED_AFTER = 1 << 24  # past this window, an outer search asks for the whole side
# Seqs per $in query. SecantusDB's cost of a $in grows with the square of the documents
# it finds (measured: 50 found, 4 ms; 200, 120 ms; 1,000, 3 s; 4,000, 45 s), which made
# the former 20,000-seq lists the bulk of issue 15's 743 s; a missing seq costs ~25 us.
LOOKUP_CHUNK = 50
HOLES_PER_CHUNK = 10_000  # holes searched together (bounds the memory of a search)


@dataclass(frozen=True)
class Neighbours:
    """What extract hands encode: the links inside the part's span (in a file, ascending
    by seq) and the nearest chained events outside it."""

    predecessor: Link | None
    successor: Link | None


def find_neighbours(
    events: EventStore,
    batches: BatchStore,
    lo: int,
    hi: int,
    holes: Iterable[tuple[int, int]],
    path: Path,
    malformed: list[str],
) -> Neighbours:
    """Write the neighbours inside ``[lo, hi]`` to ``path`` (JSON lines ``[seq,
    prevHash, hash]``) and return the nearest ones outside. ``holes``: (below, above)
    pairs of consecutive own seqs with seqs between them, ascending."""
    hint = batches.archived_edges()  # narrows the outer searches; read again below
    below = max((e.seq for e in hint if e.seq < lo), default=None)
    above = min((e.seq for e in hint if e.seq > hi), default=None)
    hint_seqs = [e.seq for e in hint]  # sorted (archived_edges)
    before = _Hole(None if below is None else below + 1, lo - 1, need_low=False)
    after = _Hole(hi + 1, None if above is None else above - 1, need_high=False)
    found_path = path.with_suffix(".holes.jsonl")
    with open(found_path, "w") as found:
        for chunk in _chunks(holes, HOLES_PER_CHUNK):
            in_chunk = [part for a, b in chunk for part in _holes(a, b, hint_seqs)]
            search(events, in_chunk, malformed)
            _write(found, (link for hole in in_chunk for link in hole.links()))
        search(events, [before, after], malformed)
    archived = batches.archived_edges()  # after every hot read: see the module's docstring
    with open(found_path) as found_lines, open(path, "w") as out:
        inside = (e for e in archived if lo <= e.seq <= hi)
        _write(out, _merge(_read(found_lines), inside))
    found_path.unlink()
    return Neighbours(
        _nearest([before.high, *(e for e in archived if e.seq < lo)], max),
        _nearest([after.low, *(e for e in archived if e.seq > hi)], min),
    )


def _holes(a: int, b: int, archived: list[int]) -> list[_Hole]:
    """The searches of the hole between own seqs ``a`` and ``b``. An archived event
    inside it (a recorded chainEdge) bounds them: the lowest chained event is at most
    the lowest archived one, the highest at least the highest, so hot is searched only
    between them and the hole's ends (a part of the hole another run archived would
    otherwise be searched through in widening windows, reading what lies beyond it)."""
    i, j = bisect.bisect_right(archived, a), bisect.bisect_left(archived, b)
    if i >= j:
        return [_Hole(a + 1, b - 1)]
    return [
        _Hole(a + 1, archived[i] - 1, need_high=False),
        _Hole(archived[j - 1] + 1, b - 1, need_low=False),
    ]


@dataclass
class _Hole:
    """Seqs ``up..down`` (None: unbounded) not yet probed, and what was found: ``low``
    the lowest chained event (when ``need_low``), ``high`` the highest."""

    up: int | None
    down: int | None
    need_low: bool = True
    need_high: bool = True
    low: Link | None = None
    high: Link | None = None
    exhausted: bool = False

    def links(self) -> list[Link]:
        found = [link for link in (self.low, self.high) if link is not None]
        return found[:1] if len(found) == 2 and found[0] == found[1] else found

    def settled(self) -> bool:
        if self.up is not None and self.down is not None and self.up > self.down:
            self.exhausted = True
        if self.exhausted:  # nothing left between them: the one found is both
            if self.need_low and self.low is None:
                self.low = self.high
            if self.need_high and self.high is None:
                self.high = self.low
            return True
        return (not self.need_low or self.low is not None) and (
            not self.need_high or self.high is not None
        )

    def probes(self, width: int) -> list[tuple[str, int | None, int | None]]:
        """This round's windows: ("all" | "up" | "down", first seq, last seq)."""
        up, down = self.up, self.down
        want_low = self.need_low and self.low is None
        want_high = self.need_high and self.high is None
        bounded = up is not None and down is not None
        if want_low and want_high and bounded and down - up + 1 <= max(2 * width, WHOLE_HOLE):
            return [("all", up, down)]
        out: list[tuple[str, int | None, int | None]] = []
        if want_low:
            assert up is not None  # an outer search from below is never open below
            last = None if down is None and width > UNBOUNDED_AFTER else up + width - 1
            out.append(("up", up, last if down is None or last is None else min(last, down)))
        if want_high:
            assert down is not None
            first = None if up is None and width > UNBOUNDED_AFTER else down - width + 1
            out.append(("down", first if up is None or first is None else max(first, up), down))
        return out

    def apply(self, side: str, first: int | None, last: int | None, links: list[Link]) -> None:
        """What a probe of ``first..last`` found (ascending)."""
        if side == "all":
            if links:
                self.low, self.high = links[0], links[-1]
            self.exhausted = True
        elif side == "up":
            if links:
                self.low = links[0]
                self.up = links[0].seq + 1  # a search from above stops here
            elif last is None:
                self.exhausted = True
            else:
                self.up = last + 1
        elif links:
            self.high = links[-1]
            self.down = links[-1].seq - 1
        elif first is None:
            self.exhausted = True
        else:
            self.down = first - 1


def search(events: EventStore, holes: list[_Hole], malformed: list[str]) -> None:
    """Probe the holes in rounds of growing windows until each is settled: narrow
    windows of every hole together in $in lists, wide ones as ranges."""
    width = FIRST_WINDOW
    pending = [hole for hole in holes if not hole.settled()]
    while pending:
        points, ranges = [], []
        for hole in pending:
            for side, first, last in hole.probes(width):
                narrow = first is not None and last is not None
                if narrow and last - first < POINT_WINDOW_MAX:
                    points.append((hole, side, first, last))
                else:
                    ranges.append((hole, side, first, last))
        seqs = [seq for _, _, first, last in points for seq in range(first, last + 1)]
        found: dict[int, Link] = {}
        for i in range(0, len(seqs), LOOKUP_CHUNK):
            for link in events.links_at(seqs[i : i + LOOKUP_CHUNK], malformed):
                found.setdefault(link.seq, link)
        for hole, side, first, last in points:
            hits = [found[seq] for seq in range(first, last + 1) if seq in found]
            hole.apply(side, first, last, hits)
        for hole, side, first, last in ranges:
            nearest = {"up": ASCENDING, "down": DESCENDING}.get(side)
            links = events.links_between(first, last, malformed, first=nearest)
            hole.apply(side, first, last, sorted(links, key=lambda link: link.seq))
        pending = [hole for hole in pending if not hole.settled()]
        width *= GROWTH


def _nearest(links: list[Link | None], pick) -> Link | None:
    candidates = [link for link in links if link is not None]
    return pick(candidates, key=lambda link: link.seq) if candidates else None


def _merge(*streams: Iterable[Link]) -> Iterator[Link]:
    """Merge sorted link streams; the same event seen twice (recorded, purge pending) once."""
    last: Link | None = None
    for link in heapq.merge(*streams, key=lambda x: x.seq):
        if last is not None and link.seq == last.seq and link.hash == last.hash:
            continue
        last = link
        yield link


def _chunks(items: Iterable[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _write(out: TextIO, links: Iterable[Link]) -> None:
    for link in links:
        out.write(json.dumps([link.seq, link.prev_hash, link.hash]) + "\n")


def _read(lines: Iterable[str]) -> Iterator[Link]:
    for line in lines:
        seq, prev_hash, hash_ = json.loads(line)
        yield Link(seq, prev_hash, hash_)

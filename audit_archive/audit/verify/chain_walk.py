"""The chain across parts, days and the hot tier, from the parts' chain edges.

Pure but for ``hot_within``, the one question it asks MongoDB (the hot events between
two seqs), so a check can be repeated against the current state.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from audit_archive.format import layout
from audit_archive.format.canonical import ZERO_HASH
from audit_archive.format.malformed import is_integer_seq


def ints(seqs: Iterable[Any]) -> tuple[int, ...]:
    """The integer seqs among ``seqs`` (Int32 and Int64 alike), as ints."""
    return tuple(int(s) for s in seqs if is_integer_seq(s))


@dataclass(frozen=True)
class Point:
    """A chained event as the chain needs it, and where it lives (None = hot)."""

    seq: Any
    prev_hash: Any
    hash: Any
    source: tuple[dt.date, int] | None
    day: dt.date | None

    def where(self) -> str:
        if self.source is None:
            return f"seq {self.seq} (hot)"
        return f"seq {self.seq} ({self.source[0]} part {self.source[1]})"


@dataclass(frozen=True)
class Hole:
    """Content the verifier cannot see: a missing day or part, a part with no usable edges."""

    day: dt.date
    lo: int | None = None
    hi: int | None = None


@dataclass
class Break:
    message: str
    seqs: tuple[int, ...]
    sides: tuple[Point, ...]


@dataclass
class Gap:
    """Two events adjacent in a part that do not link: foreign events must lie between."""

    after: Point
    before: Point


HotWithin = Callable[[int | None, int | None], tuple[Point | None, Point | None]]


def hot_point(doc: Mapping[str, Any] | None) -> Point | None:
    if doc is None:
        return None
    at = doc.get("at")
    day = layout.as_utc(at).date() if isinstance(at, dt.datetime) else None
    return Point(doc.get("seq"), doc.get("prevHash"), doc.get("hash"), None, day)


class ChainWalk:
    """Checks every link between parts (and with hot) from the parts' chain edges.

    Consecutive edges of different parts must link; where they do not, the hot events
    between them (if any) must link both ways. A gap that content the verifier cannot
    see (a missing day, a part with no usable edges) could fill is not a break: that
    content is reported on its own day.
    """

    def __init__(self, points: list[Point], holes: list[Hole], hot_within: HotWithin) -> None:
        self.holes = holes
        self.hot_within = hot_within
        self.breaks: list[Break] = []
        self.duplicates: set[int] = set()  # seqs that are edges of two parts
        self.points = self._dedupe(sorted(points, key=lambda p: p.seq))
        self._seqs = [p.seq for p in self.points]

    def _dedupe(self, points: list[Point]) -> list[Point]:
        out: list[Point] = []
        for point in points:
            if out and out[-1].seq == point.seq:
                other = out[-1]
                same = (other.prev_hash, other.hash) == (point.prev_hash, point.hash)
                self.duplicates.add(int(point.seq))
                self.breaks.append(
                    Break(
                        f"seq {point.seq} is archived in two parts"
                        + ("" if same else ", with different hashes")
                        + f": {other.where()} and {point.where()}",
                        (point.seq,),
                        (other, point),
                    )
                )
                continue
            out.append(point)
        return out

    def explained(self, x: Point | None, y: Point | None) -> bool:
        """Could unseen content lie between x and y (either may be an open end)?"""
        for h in self.holes:
            if h.lo is not None and h.hi is not None:
                if (y is None or h.lo < y.seq) and (x is None or h.hi > x.seq):
                    return True
                continue
            days = [p.day for p in (x, y) if p is not None and p.day is not None]
            if not days:
                return True
            lo = min(days) if x is not None else dt.date.min
            hi = max(days) if y is not None else dt.date.max
            if lo <= h.day <= hi:
                return True
        return False

    def _link(self, x: Point | None, y: Point, why: str = "") -> None:
        if x is None:
            if y.prev_hash != ZERO_HASH and not self.explained(None, y):
                self.breaks.append(
                    Break(
                        f"{y.where()} is the lowest chained event in the archive and hot, yet "
                        "its prevHash is not all zeros: its predecessor is nowhere",
                        ints([y.seq]),
                        (y,),
                    )
                )
            return
        if y.prev_hash != x.hash and not self.explained(x, y):
            self.breaks.append(
                Break(
                    f"{y.where()}'s prevHash does not match the hash of {x.where()}, the "
                    f"chained event before it{why}",
                    ints([x.seq, y.seq]),
                    (x, y),
                )
            )

    def run(self) -> None:
        if not self.points:
            return
        lowest, highest = self.points[0], self.points[-1]
        _, below = self.hot_within(None, lowest.seq)
        self._link(below, lowest)
        for x, y in itertools.pairwise(self.points):
            if y.prev_hash == x.hash:
                continue
            if x.source == y.source:
                # Edges of one part: its own events may lie between (checked by --deep),
                # unless no seq fits between them.
                if is_integer_seq(x.seq) and is_integer_seq(y.seq) and y.seq == x.seq + 1:
                    self._link(x, y, ", and no event can lie between them")
                continue
            first, last = self.hot_within(x.seq, y.seq)
            if first is None or last is None:
                self._link(x, y)
            else:
                self._link(x, first)
                self._link(last, y)
        above, _ = self.hot_within(highest.seq, None)
        if above is not None:
            self._link(highest, above)

    def check_gap(self, gap: Gap) -> None:
        """A link inside a part that does not hold: events of other parts or hot must lie
        between its two events, each side linking to them."""
        a, b = gap.after, gap.before
        i = bisect.bisect_right(self._seqs, a.seq)
        if i < len(self.points) and self.points[i].seq < b.seq:
            return  # another part's edges lie between; the walk checked their links
        first, last = self.hot_within(a.seq, b.seq)
        if first is None or last is None:
            self._link(a, b, ", and no chained event lies between them")
        else:
            self._link(a, first)
            self._link(last, b)


def edge_points(edges: Any, source: tuple[dt.date, int]) -> list[Point]:
    return [
        Point(e["seq"], e.get("prevHash"), e.get("hash"), source, source[0])
        for e in edges
        if isinstance(e, Mapping) and is_integer_seq(e.get("seq"))
    ]

"""The chain check of a verification: where the edges come from (each part's manifest,
the batch records outside the range), what the verifier cannot see (holes), the walk,
and a re-check of any break against the current state before it is reported."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audit_archive.audit.verify.chain_walk import (
    Break,
    ChainWalk,
    Gap,
    Hole,
    Point,
    edge_points,
    hot_point,
)
from audit_archive.audit.verify.checks import norm_edges
from audit_archive.audit.verify.parts import Part
from audit_archive.audit.verify.report import DayReport, Finding, Status
from audit_archive.audit.verify.span import Span
from audit_archive.format import layout
from audit_archive.format.malformed import is_integer_seq
from audit_archive.stores.clients import Stores

Records = Mapping[dt.date, list[dict[str, Any]]]


def records_by_day(stores: Stores) -> dict[dt.date, list[dict[str, Any]]]:
    """The batch records by the day they name; a record whose ``day`` is no
    ``YYYY-MM-DD`` day (the archiver writes none) belongs to no day and is left out."""
    out: dict[dt.date, list[dict[str, Any]]] = {}
    for rec in stores.batches.records():
        day = layout.parse_day_or_none(rec.get("day"))
        if day is not None:
            out.setdefault(day, []).append(rec)
    return out


@dataclass
class ChainInput:
    """Everything the walk needs besides hot: the edges and the unseen content."""

    points: list[Point]
    holes: list[Hole]


def chain_input(
    span: Span, parts: Sequence[Part], records: Records, day_holes: list[Hole]
) -> ChainInput:
    """Edges of the parts in range (their manifests, else their records); of every
    other recorded part, from its record; holes for what cannot be seen."""
    points: list[Point] = []
    holes = [h for h in day_holes if h.day not in records]  # archived since: edges below
    seen = {p.source for p in parts}
    for p in parts:
        if p.edges is not None:
            points += edge_points(p.edges, p.source)
        elif p.event_count or p.record is None:
            holes.append(Hole(p.day, *(p.seq_range or (None, None))))
    for day, recs in records.items():
        for rec in recs:
            source = (day, rec.get("part"))
            if source in seen:
                continue
            if norm_edges(rec.get("chainEdges")) is not None:
                points += edge_points(rec["chainEdges"], source)  # type: ignore[arg-type]
            elif rec.get("eventCount"):
                holes.append(Hole(day, rec.get("startSeq"), rec.get("endSeq")))
    in_range = set(span.days)
    for day in layout.days(span.start, span.newest_due):
        if day not in in_range and day not in records:
            holes.append(Hole(day))  # not verified here: assume the worst
    return ChainInput(points, holes)


def walk_chain(stores: Stores, data: ChainInput, gaps: Sequence[Gap] = ()) -> ChainWalk:
    def hot_within(above: int | None, below: int | None) -> tuple[Point | None, Point | None]:
        lo, hi = stores.events.chained_within(above, below)
        return hot_point(lo), hot_point(hi)

    walk = ChainWalk(data.points, data.holes, hot_within)
    walk.run()
    for gap in gaps:
        walk.check_gap(gap)
    return walk


def recheck(
    stores: Stores,
    span: Span,
    parts: Sequence[Part],
    records: Records,
    day_holes: list[Hole],
    walk: ChainWalk,
    gaps: Sequence[Gap],
) -> list[Break]:
    """The gaps inside parts (--deep) checked; then a break seen while a run archived a day (its events left hot after we looked, its
    record came later) is not one: walk again against the records and hot as they are now,
    and report only what still does not link."""
    for gap in gaps:
        walk.check_gap(gap)
    if not walk.breaks:
        return []
    current = records_by_day(stores)
    return walk_chain(stores, chain_input(span, parts, current, day_holes), gaps).breaks


def highest_archived_seq(parts: Sequence[Part], records: Records) -> int | None:
    ends = [p.seq_range[1] for p in parts if p.seq_range]
    ends += [
        int(r["endSeq"])
        for recs in records.values()
        for r in recs
        if is_integer_seq(r.get("endSeq"))
    ]
    return max(ends, default=None)


def charge_breaks(
    reports: dict[dt.date, DayReport], breaks: Sequence[Break], parts: Sequence[Part]
) -> None:
    """A break is charged to both sides' days (hot events by their `at`), unless one side
    is a part already found modified or unverifiable: that explains it."""
    by_source = {p.source: p for p in parts}
    for brk in breaks:
        tainted = [s for s in brk.sides if s.source in by_source and by_source[s.source].tainted]
        for side in tainted or brk.sides:
            day, part = side.source if side.source is not None else (side.day, None)
            if day in reports:
                reports[day].add(Finding(Status.CHAIN_BREAK, brk.message, part, brk.seqs))

"""The neighbour search (archive/neighbours.py) against a model of the hot store: for
random chains, holes and burned seqs, each hole's lowest and highest chained event and
the nearest ones outside are exactly what a full scan finds, and the documents the
search reads do not grow with the events inside the holes."""

from __future__ import annotations

import bisect
import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from audit_archive.archive import neighbours
from audit_archive.format.chain import Link


class ModelHot:
    """The events (links_at, links_between) and the batch records (archived_edges) over
    sorted seqs, one model for both stores, counting what a
    server that reads every document its index selects would read."""

    def __init__(self, seqs: list[int], edges: list[int] = ()) -> None:
        self.seqs = sorted(seqs)
        self.edges = [Link(s, f"p{s}", f"h{s}") for s in sorted(edges)]
        self.read = self.queries = 0

    def links_at(self, seqs: list[int], malformed: list[str] | None = None) -> list[Link]:
        self.queries += 1
        wanted = set(seqs)
        found = [Link(s, f"p{s}", f"h{s}") for s in self.seqs if s in wanted]
        self.read += len(found)
        return found

    def links_between(
        self, lo: int | None, hi: int | None, malformed: Any = None, *, first: int | None = None
    ) -> list[Link]:
        self.queries += 1
        start = 0 if lo is None else bisect.bisect_left(self.seqs, lo)
        end = len(self.seqs) if hi is None else bisect.bisect_right(self.seqs, hi)
        found = [Link(s, f"p{s}", f"h{s}") for s in self.seqs[start:end]]
        self.read += len(found)
        if first == -1:
            return found[-1:]
        return found[:1] if first == 1 else found

    def archived_edges(self) -> list[Link]:
        return list(self.edges)


def holes_of(own: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for a, b in itertools.pairwise(own) if b > a + 1]


@pytest.mark.parametrize("trial", range(40))
def test_each_hole_gives_its_lowest_and_highest_event(trial: int, tmp_path: Path) -> None:
    rng = random.Random(trial)
    seq, own, foreign = 1_000, [], []
    for _ in range(rng.randint(1, 30)):
        seq += rng.choice([1, 1, 1, 2, 5, 40, 300])  # burned seqs, now and then many
        (own if rng.random() < 0.6 else foreign).append(seq)
        if rng.random() < 0.2:  # a run of another day's events
            for _ in range(rng.randint(1, 200)):
                seq += rng.choice([1, 1, 1, 3, 90])
                foreign.append(seq)
    if not own:
        own.append(seq + 1)
    if rng.random() < 0.5:
        foreign.append(own[0] - rng.choice([1, 7, 5_000]))
    hot = ModelHot(own + foreign)
    path = tmp_path / "n.jsonl"

    found = neighbours.find_neighbours(hot, hot, own[0], own[-1], holes_of(own), path, [])

    expected = []
    for a, b in holes_of(own):
        inside = [s for s in foreign if a < s < b]
        expected += sorted({inside[0], inside[-1]}) if inside else []
    assert [int(line.split(",")[0][1:]) for line in path.read_text().splitlines()] == expected
    below = [s for s in foreign if s < own[0]]
    above = [s for s in foreign if s > own[-1]]
    assert (found.predecessor.seq if found.predecessor else None) == max(below, default=None)
    assert (found.successor.seq if found.successor else None) == min(above, default=None)


def test_the_events_inside_a_hole_are_not_read(tmp_path: Path) -> None:
    own = [10, 11, 12, 1_000_013, 1_000_014]
    hot = ModelHot([*own, *range(13, 1_000_013)])  # a million events in the one hole
    found = neighbours.find_neighbours(hot, hot, 10, 1_000_014, holes_of(own), tmp_path / "n", [])
    assert found.predecessor is None and found.successor is None
    assert (tmp_path / "n").read_text().count("\n") == 2  # 13 and 1,000,012
    assert hot.read == 2 and hot.queries <= 30


def test_an_archived_edge_bounds_the_search_below_and_counts_as_a_neighbour(
    tmp_path: Path,
) -> None:
    hot = ModelHot([5, 100, 101], edges=[99])  # 99 archived by its day's run
    found = neighbours.find_neighbours(hot, hot, 100, 101, [], tmp_path / "n", [])
    assert found.predecessor.seq == 99
    assert hot.read == 0, "5 lies below the archived 99: never looked for"


def test_archived_events_inside_a_hole_bound_its_search_in_hot(tmp_path: Path) -> None:
    """The upper part of a hole another run archived (its chainEdges 601 and 990): hot is
    searched only between the hole's ends and those edges, not through the archived part
    into the events in hot below it."""
    own = [10, 1_000]
    hot = ModelHot([*own, *range(11, 601)], edges=[601, 990])  # 601..990: purged
    neighbours.find_neighbours(hot, hot, 10, 1_000, holes_of(own), tmp_path / "n", [])
    lines = (tmp_path / "n").read_text().splitlines()
    assert [int(line.split(",")[0][1:]) for line in lines] == [11, 601, 990]
    assert hot.read <= 2, f"read {hot.read}, not the events in hot below the archived part"

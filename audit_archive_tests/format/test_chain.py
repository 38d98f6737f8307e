"""Chain checks in one pass by seq: links to neighbours wherever they live, and chainEdges."""

from __future__ import annotations

from audit_archive.format.canonical import ZERO_HASH
from audit_archive.format.chain import ChainTracker, Link


def h(seq: int) -> str:
    return f"{seq:064x}"


def link(seq: int, prev: int | None, in_part: bool = True) -> Link:
    return Link(seq, ZERO_HASH if prev is None else h(prev), h(seq), in_part)


def run(
    links: list[Link], predecessor: Link | None = None, successor: Link | None = None
) -> ChainTracker:
    tracker = ChainTracker(predecessor)
    for item in links:
        tracker.add(item)
    tracker.finish(successor)
    return tracker


def test_an_intact_part_in_the_middle_of_the_chain_has_two_edges() -> None:
    t = run(
        [link(5, 4), link(6, 5), link(9, 6)],
        predecessor=link(4, 3, False),
        successor=link(10, 9, False),
    )
    assert t.breaks == []
    assert [e["seq"] for e in t.edges] == [5, 9]
    assert t.edges[0] == {"seq": 5, "prevHash": h(4), "hash": h(5)}


def test_a_foreign_event_inside_the_range_makes_both_sides_edges() -> None:
    t = run([link(1, None), link(2, 1), link(3, 2, in_part=False), link(4, 3), link(5, 4)])
    assert t.breaks == []
    assert [e["seq"] for e in t.edges] == [1, 2, 4, 5]


def test_a_single_event_part_is_one_edge() -> None:
    t = run([link(7, 6)], predecessor=link(6, 5, False))
    assert [e["seq"] for e in t.edges] == [7]


def test_the_first_event_of_the_chain_must_carry_zero_prev_hash() -> None:
    t = run([Link(1, h(99), h(1), True)])
    assert t.breaks == [(1, "no chained event precedes it, yet prevHash is not all zeros")]


def test_a_broken_link_names_both_events() -> None:
    t = run([link(1, None), Link(2, h(77), h(2), True), link(3, 2)])
    assert t.breaks == [(2, "prevHash does not match the hash of seq 1")]
    t = run([link(1, None), link(2, 1)], successor=Link(3, h(42), h(3)))
    assert (3, "prevHash does not match the hash of seq 2") in t.breaks
    assert (2, "its successor seq 3 does not link to it") in t.breaks


def test_a_rehash_mismatch_and_a_duplicate_seq_are_breaks() -> None:
    tracker = ChainTracker(None)
    tracker.add(link(1, None))
    tracker.add(link(2, 1), rehash_ok=False)
    tracker.add(link(2, 1))
    tracker.finish(None)
    assert (2, "event re-hash mismatch") in tracker.breaks
    assert (2, "duplicate seq 2") in tracker.breaks


def test_links_between_foreign_events_are_not_this_parts_business() -> None:
    t = run([link(1, None), Link(2, h(1), h(2), False), Link(3, h(51), h(3), False), link(4, 3)])
    assert t.breaks == []

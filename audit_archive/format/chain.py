"""Chain checks over a part's events and their neighbours, in one pass by ``seq``.

Chain order is ``seq`` order across *all* chained events, wherever they live: a day's
events may interleave with other days' (``at`` is not monotonic in ``seq``), and a
neighbour may be in hot, in this part, or in an earlier part (known from that part's
``chainEdges``). The caller merges the part's events with those neighbours by ``seq``
and feeds them here; the tracker checks every link that touches a part event and
collects the part's ``chainEdges`` as it goes, with one event of look-ahead.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from audit_archive.format.canonical import ZERO_HASH

HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Link(NamedTuple):
    """A chained event reduced to what the chain needs (a tuple: one is made per event
    archived, and a frozen dataclass costs several times as much to build)."""

    seq: int
    prev_hash: Any
    hash: Any
    in_part: bool = False

    def edge(self) -> dict[str, Any]:
        return {"seq": self.seq, "prevHash": self.prev_hash, "hash": self.hash}


class ChainTracker:
    """Feed links in ascending ``seq``: the part's events and the neighbours between them.

    ``predecessor`` is the chained event just below the first one fed (None when there
    is none, so the first event must carry the all-zero ``prevHash``).
    """

    def __init__(self, predecessor: Link | None) -> None:
        self._prev: Link | None = predecessor
        self._pending: Link | None = None  # last part event, edge status not yet known
        self._pending_is_edge = False
        self.edges: list[dict[str, Any]] = []
        self.breaks: list[tuple[int, str]] = []

    def add(self, link: Link, rehash_ok: bool = True) -> None:
        prev = self._prev
        if link.in_part and not rehash_ok:
            self.breaks.append((link.seq, "event re-hash mismatch"))
        if prev is not None and link.seq == prev.seq:
            if link.in_part or prev.in_part:
                self.breaks.append((prev.seq, f"duplicate seq {link.seq}"))
        elif link.in_part or (prev is not None and prev.in_part):
            self._check_link(prev, link)
        self._settle_pending(link)
        if link.in_part:
            self._pending = link
            self._pending_is_edge = prev is None or not prev.in_part
        self._prev = link

    def extend_linked(self, second: Link, last: Link) -> None:
        """After ``add`` of a part event, the part events that follow it, known by the
        caller to be in ascending ``seq`` with nothing between them, each re-hashing and
        linking to the one before it: given by the first of them and the last. The same
        as ``add`` of each (no break; only the first can settle the pending edge), at
        the cost of one ``add``: this runs for nearly every batch of a day."""
        self.add(second)
        if last is not second:
            self._pending, self._pending_is_edge, self._prev = last, False, last

    def finish(self, successor: Link | None) -> None:
        """Close the stream with the chained event just above the last one fed."""
        if successor is not None and self._prev is not None and self._prev.in_part:
            self._check_link(self._prev, successor)
        if self._pending is not None:
            self.edges.append(self._pending.edge())  # its successor is outside (or absent)
            self._pending = None

    def _settle_pending(self, nxt: Link) -> None:
        if self._pending is not None:
            if self._pending_is_edge or not nxt.in_part:
                self.edges.append(self._pending.edge())
            self._pending = None

    def _check_link(self, prev: Link | None, link: Link) -> None:
        if prev is None:
            if link.prev_hash != ZERO_HASH:
                self.breaks.append(
                    (link.seq, "no chained event precedes it, yet prevHash is not all zeros")
                )
        elif link.prev_hash != prev.hash:
            self.breaks.append((link.seq, f"prevHash does not match the hash of seq {prev.seq}"))
            if prev.in_part and not link.in_part:
                self.breaks.append((prev.seq, f"its successor seq {link.seq} does not link to it"))

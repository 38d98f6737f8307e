"""RFC 6962 Merkle Tree Hash over a part's event hashes, built while streaming.

Leaves are the 32 raw bytes of each event's ``hash``. The builder keeps one pending
perfect subtree per bit of the leaf count, so memory is O(log n) whatever the day's
size; audit paths (for ``audit-archive prove``) are built from a second pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def leaf_hash(event_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleBuilder:
    """Streaming Merkle Tree Hash: ``add`` leaves in order, then ``root``."""

    __slots__ = ("_stack", "count")

    def __init__(self) -> None:
        # Roots of the pending perfect subtrees, largest first: one per set bit of
        # ``count``, so adding a leaf merges as many as ``count + 1`` has trailing zeros.
        self._stack: list[bytes] = []
        self.count = 0

    def add(self, event_hash_hex: str) -> None:
        self.add_all((event_hash_hex,))

    def add_all(self, event_hashes_hex: Iterable[str]) -> None:
        """``add`` each, in order (one call per batch of events: this runs per event)."""
        sha256, fromhex, stack, count = hashlib.sha256, bytes.fromhex, self._stack, self.count
        for event_hash_hex in event_hashes_hex:
            node = sha256(b"\x00" + fromhex(event_hash_hex)).digest()
            count += 1
            merges = count
            while not merges & 1:
                node = sha256(b"\x01" + stack.pop() + node).digest()
                merges >>= 1
            stack.append(node)
        self.count = count

    def root(self) -> str | None:
        """Hex root, or None for an empty part (the manifest then says null)."""
        if not self._stack:
            return None
        # Folding the pending subtrees right to left gives exactly RFC 6962's split
        # (left subtree = largest power of two smaller than n).
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node.hex()


def merkle_root(event_hashes: Iterable[str]) -> str | None:
    builder = MerkleBuilder()
    for h in event_hashes:
        builder.add(h)
    return builder.root()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _mth(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _largest_power_of_two_below(len(leaves))
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def audit_path(event_hashes: Sequence[str], index: int) -> list[str]:
    """RFC 6962 audit path (sibling hashes, leaf to root) for leaf ``index``."""
    if not 0 <= index < len(event_hashes):
        raise IndexError(f"leaf index {index} outside a tree of {len(event_hashes)}")
    leaves = [leaf_hash(h) for h in event_hashes]
    path: list[bytes] = []

    def walk(lo: int, hi: int, m: int) -> None:
        n = hi - lo
        if n == 1:
            return
        k = _largest_power_of_two_below(n)
        if m < k:
            walk(lo, lo + k, m)
            path.append(_mth(leaves[lo + k : hi]))
        else:
            walk(lo + k, hi, m - k)
            path.append(_mth(leaves[lo : lo + k]))

    walk(0, len(leaves), index)
    return [p.hex() for p in path]


def root_from_path(event_hash_hex: str, index: int, size: int, path: Sequence[str]) -> str:
    """Recompute the root from one leaf and its audit path (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size}")
    fn, sn = index, size - 1
    node = leaf_hash(event_hash_hex)
    for sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        if sn == 0:
            raise ValueError("audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path is shorter than the tree is deep")
    return node.hex()

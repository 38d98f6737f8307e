"""The manifest's ``merkleRoot``: RFC 6962 over a part's event hashes, built while streaming.

Leaves are the 32 raw bytes of each event's ``hash`` (SPEC section 3). The tree itself
is the signed log's (``tlog``, one RFC 6962 implementation for both); this module only
speaks in the hex event hashes manifests and proofs carry. The builder keeps one pending
perfect subtree per bit of the leaf count, so memory is O(log n) whatever the day's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from audit_archive.format import nativecodec, tlog


def leaf_hash(event_hash_hex: str) -> bytes:
    return tlog.leaf_hash(bytes.fromhex(event_hash_hex))


class MerkleBuilder:
    """Streaming Merkle Tree Hash: ``add`` leaves in order, then ``root``."""

    __slots__ = ("_tree",)

    def __init__(self) -> None:
        self._tree = tlog.TreeBuilder()

    @property
    def count(self) -> int:
        return self._tree.size

    @property
    def held(self) -> int:
        return self._tree.held

    def add(self, event_hash_hex: str) -> None:
        self.add_all((event_hash_hex,))

    def add_all(self, event_hashes_hex: Iterable[str]) -> None:
        """``add`` each, in order (one call per batch of events: this runs per event; in
        C, nativecodec.merkle_extend, where built and enabled)."""
        tree = self._tree
        size = nativecodec.merkle_extend(tree.stack, tree.size, event_hashes_hex)
        if size is not None:
            tree.size = size
            return
        sha256, fromhex = hashlib.sha256, bytes.fromhex
        tree.extend(sha256(b"\x00" + fromhex(h)).digest() for h in event_hashes_hex)

    def root(self) -> str | None:
        """Hex root, or None for an empty part (the manifest then says null)."""
        return self._tree.root().hex() if self._tree.size else None


def merkle_root(event_hashes: Iterable[str]) -> str | None:
    builder = MerkleBuilder()
    builder.add_all(event_hashes)
    return builder.root()


def audit_path(event_hashes: Sequence[str], index: int) -> list[str]:
    """RFC 6962 audit path (sibling hashes, leaf to root) for leaf ``index``."""
    if not 0 <= index < len(event_hashes):
        raise IndexError(f"leaf index {index} outside a tree of {len(event_hashes)}")
    leaves = [leaf_hash(h) for h in event_hashes]
    return [p.hex() for p in tlog.inclusion_proof(leaves, index)]


def root_from_path(event_hash_hex: str, index: int, size: int, path: Sequence[str]) -> str:
    """Recompute the root from one leaf and its audit path (RFC 9162 section 2.1.3.2);
    ValueError for a path that does not fit the tree."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size}")
    siblings = [bytes.fromhex(p) for p in path]
    return tlog.root_from_inclusion(index, size, leaf_hash(event_hash_hex), siblings).hex()

"""RFC 6962 / RFC 9162 Merkle trees over arbitrary byte strings: the signed log's tree.

Leaves of the signed log are the exact bytes of manifest objects (SPEC section 7):
leaf hash = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), the left
subtree holding the largest power of two smaller than n, and the empty tree's hash
SHA-256(""). Proofs are the standard inclusion and consistency proofs, so any RFC 6962
verifier (transparency-dev/merkle, Go's sumdb/tlog) accepts them; the tests check the
known-answer vectors of transparency-dev/merkle.

Everything here takes leaf *hashes*: callers hash each manifest once (``leaf_hash``)
and keep the 32-byte results, so a proof never needs the manifests themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify (or cannot, given its sizes)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class TreeBuilder:
    """Append leaf hashes, read the root at any size: O(log n) memory (a compact range)."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[bytes] = []  # roots of the perfect subtrees, largest first
        self.size = 0

    def append(self, leaf: bytes) -> None:
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """``append`` each, in order (inlined: a part's Merkle tree runs this per event)."""
        sha256, stack, size = hashlib.sha256, self._stack, self.size
        for node in leaves:
            size += 1
            merges = size
            while not merges & 1:
                node = sha256(b"\x01" + stack.pop() + node).digest()
                merges >>= 1
            stack.append(node)
        self.size = size

    @property
    def stack(self) -> list[bytes]:
        """The compact range itself (roots of the perfect subtrees, largest first), for
        nativecodec.merkle_extend to extend in place with ``size``."""
        return self._stack

    @property
    def held(self) -> int:
        """How many subtree roots it keeps: the popcount of ``size``, at most log2(n) + 1."""
        return len(self._stack)

    def root(self) -> bytes:
        return root_of_stack(self._stack)


def root_of_stack(stack: Sequence[bytes]) -> bytes:
    """The root of a compact range (TreeBuilder.stack: the perfect subtrees' roots,
    largest first)."""
    if not stack:
        return EMPTY_ROOT
    node = stack[-1]
    for left in reversed(stack[:-1]):
        node = node_hash(left, node)
    return node


def tree_hash(leaves: Iterable[bytes]) -> bytes:
    """Merkle Tree Hash over leaf hashes (EMPTY_ROOT for none)."""
    builder = TreeBuilder()
    for leaf in leaves:
        builder.append(leaf)
    return builder.root()


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): sibling hashes from the leaf up to the root."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    # Walk down, collecting siblings root-first; reversed at the end (leaf first).
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            path.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaves, lo, lo + k))
            lo, m = lo + k, m - k
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], size1: int, size2: int | None = None) -> list[bytes]:
    """RFC 6962 PROOF(size1, D[0:size2]): shows the tree of size1 is a prefix of size2."""
    size2 = len(leaves) if size2 is None else size2
    if not 0 <= size1 <= size2 <= len(leaves):
        raise ValueError(f"no consistency proof from size {size1} to {size2}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []

    def sub(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(_mth(leaves, lo, hi))
            return
        k = _split(n)
        if m <= k:
            sub(m, lo, lo + k, complete)
            proof.append(_mth(leaves, lo + k, hi))
        else:
            sub(m - k, lo + k, hi, False)
            proof.append(_mth(leaves, lo, lo + k))

    sub(size1, 0, size2, True)
    return proof


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}: a hash of {len(h)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes([leaf, *proof], "inclusion proof")
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return node


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``leaf`` is leaf ``index`` of the tree of ``size`` and ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the tree's root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise ProofError unless the tree (size1, root1) is a prefix of (size2, root2).

    RFC 9162 section 2.1.4.2; as transparency-dev/merkle, size1 == 0 is consistent
    with anything (given an empty proof).
    """
    _check_hashes(proof, "consistency proof")
    if size1 < 0 or size2 < size1:
        raise ProofError(f"a tree of size {size2} cannot extend one of size {size1}")
    if size1 == size2:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same tree size {size1}")
        return
    if size1 == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is itself a node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")

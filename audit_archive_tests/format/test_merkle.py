"""RFC 6962 Merkle Tree Hash: the streaming builder against the RFC's recursive definition,
and the builder's loop in C (nativecodec.merkle_extend) against its Python path."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.format import nativecodec, tlog
from audit_archive.format.merkle import (
    MerkleBuilder,
    audit_path,
    leaf_hash,
    merkle_root,
    root_from_path,
)
from audit_archive_tests.support.rfc6962 import LEAVES, ROOTS


@contextmanager
def c_module(enabled: bool) -> Iterator[None]:
    """The builder's loop in C (nativecodec.merkle_extend) or on the Python path."""
    assert nativecodec.available()
    before = nativecodec.ENABLED
    nativecodec.ENABLED = enabled
    try:
        yield
    finally:
        nativecodec.ENABLED = before


def rfc6962_mth(hashes: list[str]) -> str:
    """The RFC's definition, written independently of the module under test."""

    def mth(leaves: list[bytes]) -> bytes:
        if len(leaves) == 1:
            return hashlib.sha256(b"\x00" + leaves[0]).digest()
        k = 1
        while k * 2 < len(leaves):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()

    return mth([bytes.fromhex(h) for h in hashes]).hex()


def hashes(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 34), 100, 1000, 1025])
def test_streaming_root_equals_the_rfc_definition(n: int) -> None:
    assert merkle_root(hashes(n)) == rfc6962_mth(hashes(n))


def test_an_empty_part_has_no_root() -> None:
    assert merkle_root([]) is None


def test_the_builder_keeps_logarithmic_state() -> None:
    builder = MerkleBuilder()
    for h in hashes(1000):
        builder.add(h)
        assert builder.held <= 10  # popcount of the count, at most log2(1000)+1


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 1000])
def test_every_leaf_proves_back_to_the_root(n: int) -> None:
    hs = hashes(n)
    root = merkle_root(hs)
    for index in {0, n // 2, n - 1}:
        assert root_from_path(hs[index], index, n, audit_path(hs, index)) == root


def test_a_wrong_leaf_or_path_does_not_reach_the_root() -> None:
    hs = hashes(8)
    root = merkle_root(hs)
    path = audit_path(hs, 3)
    assert root_from_path(hs[4], 3, 8, path) != root
    assert root_from_path(hs[3], 3, 8, [path[0], path[2], path[1]]) != root
    with pytest.raises(ValueError):
        root_from_path(hs[3], 3, 8, path[:-1])


# --- The loop in C (nativecodec.merkle_extend) gives the Python path's tree -----------


@pytest.mark.parametrize("c", [True, False], ids=["C", "python"])
@pytest.mark.parametrize("size", range(1, 9))
def test_transparency_dev_reference_roots(size: int, c: bool) -> None:
    """The reference leaves are arbitrary bytes (the first is empty): their hex goes
    through bytes.fromhex on both paths."""
    with c_module(c):
        builder = MerkleBuilder()
        builder.add_all(leaf.hex() for leaf in LEAVES[:size])
        assert builder.root() == ROOTS[size - 1].hex()
        assert builder.count == size


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.lists(st.integers(1, 700), max_size=30), st.integers(0, 2**32))
def test_c_builds_the_python_paths_tree_in_any_batches(n: int, cuts: list[int], seed: int) -> None:
    """Random leaf counts split into random batches (some empty): after every batch the C
    and Python builders have the same count and root, and end at tlog.tree_hash's root."""
    rng = random.Random(seed)
    hs = [rng.randbytes(32).hex() for _ in range(n)]
    builders = {True: MerkleBuilder(), False: MerkleBuilder()}
    start = 0
    for cut in [*cuts, n]:
        batch = hs[start : start + cut] if start < n else []
        start += len(batch)
        for c, builder in builders.items():
            with c_module(c):
                builder.add_all(batch)
        assert builders[True].count == builders[False].count == start
        assert builders[True].held == builders[False].held
        assert builders[True].root() == builders[False].root()
    assert start == n
    root = builders[True].root()
    assert root == builders[False].root()
    assert root == (tlog.tree_hash([leaf_hash(h) for h in hs]).hex() if n else None)


@pytest.mark.parametrize(
    "odd", ["AB" * 32, "ab cd", "ab" * 40, "", "ab" * 200], ids=["upper", "space", "40", "0", "200"]
)
def test_hex_bytes_fromhex_takes_is_hashed_alike_on_both_paths(odd: str) -> None:
    roots = []
    for c in (True, False):
        with c_module(c):
            roots.append(merkle_root([HASH, odd, HASH]))
    assert roots[0] == roots[1] == rfc6962_mth([HASH, odd.replace(" ", ""), HASH])


HASH = "0f" * 32


@pytest.mark.parametrize(
    "bad", ["zz" * 32, "ab" * 31 + "a", "ab" * 31 + "ag", "é" * 64, "abc", 5, None, b"ab" * 32]
)
def test_a_hash_bytes_fromhex_refuses_raises_alike_on_both_paths(bad: object) -> None:
    errors = []
    for c in (True, False):
        with c_module(c), pytest.raises((ValueError, TypeError)) as caught:
            merkle_root([HASH, bad])  # type: ignore[list-item]
        errors.append((caught.type, str(caught.value)))
    assert errors[0] == errors[1]


def test_after_a_refused_hash_the_c_builder_is_as_it_was() -> None:
    with c_module(True):
        builder = MerkleBuilder()
        builder.add_all([HASH] * 5)
        with pytest.raises(ValueError):
            builder.add_all([HASH, HASH, "zz"])
        builder.add(HASH)
        assert builder.count == 6
        assert builder.root() == rfc6962_mth([HASH] * 6)


SHA256S = {
    "hashlib": nativecodec.HASHLIB,
    "portable": nativecodec.PORTABLE,
    "best": nativecodec.BEST,
}


@pytest.mark.parametrize("sha256", SHA256S.values(), ids=SHA256S.keys())
def test_each_sha256_of_the_c_loop_gives_the_reference_roots(sha256: int) -> None:
    """The C loop's SHA-256s: hashlib's, the portable C one, and the best the CPU has
    (SHA-NI here where nativecodec.SHA256_BLOCK says so)."""
    assert nativecodec.SHA256_BLOCK in ("sha-ni", "portable")
    with c_module(True):
        for size in range(1, 9):
            stack: list[bytes] = []
            hexes = [leaf.hex() for leaf in LEAVES[:size]]
            assert nativecodec.merkle_extend(stack, 0, hexes, sha256) == size
            assert tlog.root_of_stack(stack) == ROOTS[size - 1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 600), min_size=1, max_size=6), st.integers(0, 2**32))
def test_each_sha256_of_the_c_loop_builds_the_python_paths_tree(
    batches: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    trees = {sha256: ([], 0) for sha256 in SHA256S.values()}
    reference = MerkleBuilder()
    with c_module(True):
        for n in batches:
            hs = [rng.randbytes(32).hex() for _ in range(n)]
            for sha256, (stack, size) in trees.items():
                trees[sha256] = (stack, nativecodec.merkle_extend(stack, size, hs, sha256))
            with c_module(False):
                reference.add_all(hs)
            for stack, size in trees.values():
                assert size == reference.count
                assert (tlog.root_of_stack(stack).hex() if size else None) == reference.root()

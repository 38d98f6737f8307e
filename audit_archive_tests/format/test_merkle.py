"""RFC 6962 Merkle Tree Hash: the streaming builder against the RFC's recursive definition."""

from __future__ import annotations

import hashlib

import pytest

from audit_archive.format.merkle import MerkleBuilder, audit_path, merkle_root, root_from_path


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

"""RFC 6962 log trees over bytes: transparency-dev/merkle's known answers, then properties.

Vectors from transparency-dev/merkle (rfc6962/rfc6962_test.go, proof/verify_test.go):
the RFC 6962 reference leaves, the roots of the trees of sizes 1 to 8, and their
inclusion and consistency proofs.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.format.tlog import (
    EMPTY_ROOT,
    ProofError,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from audit_archive_tests.support.rfc6962 import LEAVES, ROOTS


def h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (1-based leaf, tree size, proof), as in verify_test.go
INCLUSION = [
    (1, 1, []),
    (1, 8, h(
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )),
    (6, 8, h(
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )),
    (3, 3, h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (2, 5, h(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (1, 8, h(
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )),
    (6, 8, h(
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )),
    (2, 5, h(
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )),
    (6, 7, h(
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )),
]  # fmt: skip
HASHED = [leaf_hash(x) for x in LEAVES]


def test_hasher_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert tree_hash([]) == EMPTY_ROOT
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_reference_trees(size: int) -> None:
    assert tree_hash(HASHED[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_and_verify(leaf: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(HASHED, leaf - 1, size) == proof
    verify_inclusion(leaf - 1, size, HASHED[leaf - 1], proof, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_proofs_match_and_verify(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(HASHED, size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_fail(leaf: int, size: int, proof: list[bytes]) -> None:
    index, root, lh = leaf - 1, ROOTS[size - 1], HASHED[leaf - 1]
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (index - 1, size, lh, proof, root),
        (index + 1, size, lh, proof, root),
        (index ^ 2, size, lh, proof, root),
        (index, size * 2, lh, proof, root),
        (index, size // 2, lh, proof, root),
        (index, size, leaf_hash(b"WrongLeaf"), proof, root),
        (index, size, lh, proof, EMPTY_ROOT),
        (index, size, lh, proof, some),
        (index, size, lh, [*proof, root], root),
        (index, size, lh, [root, *proof], root),
        (index, size, lh, proof[:-1], root),
        (index, size, lh, [proof[0], some, *proof[1:]], root),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((index, size, lh, flipped, root))
    for p in probes:
        with pytest.raises(ProofError):
            verify_inclusion(*p)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_fail(size1: int, size2: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    probes = [
        (size1 - 1, size2, proof, r1, r2),
        (size1 + 1, size2, proof, r1, r2),
        (size1 ^ 2, size2, proof, r1, r2),
        (size1, size2 * 2, proof, r1, r2),
        (size1, size2 // 2, proof, r1, r2),
        (size1, size2, proof, leaf_hash(b"WrongRoot"), r2),
        (size1, size2, proof, r1, leaf_hash(b"WrongRoot")),
        (size1, size2, proof, r2, r1),
        (size1, size2, [], r1, r2),
        (size1, size2, [*proof, r1], r1, r2),
        (size1, size2, [*proof, r2], r1, r2),
        (size1, size2, [r1, *proof], r1, r2),
        (size1, size2, [r2, *proof], r1, r2),
        (size1, size2, [proof[0], *proof], r1, r2),
        (size1, size2, proof[:-1], r1, r2),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((size1, size2, flipped, r1, r2))
    for p in probes:
        with pytest.raises(ProofError):
            verify_consistency(*p)


def test_degenerate_consistency() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 5, [], EMPTY_ROOT, ROOTS[4])
    verify_consistency(3, 3, [], ROOTS[2], ROOTS[2])
    for bad in (
        (3, 3, [], ROOTS[2], ROOTS[3]),  # same size, two roots: a fork
        (3, 2, [], ROOTS[2], ROOTS[1]),  # the log shrank
        (0, 1, [EMPTY_ROOT], EMPTY_ROOT, ROOTS[0]),
        (1, 1, [EMPTY_ROOT], ROOTS[0], ROOTS[0]),
    ):
        with pytest.raises(ProofError):
            verify_consistency(*bad)


def _rfc_mth(data: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written independently of the module under test."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc_mth(data[:k]) + _rfc_mth(data[k:])).digest()


leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaf_lists)
def test_builder_root_equals_the_rfc_definition_at_every_size(data: list[bytes]) -> None:
    builder = TreeBuilder()
    for i, d in enumerate(data):
        builder.append(leaf_hash(d))
        assert builder.size == i + 1
    assert builder.root() == _rfc_mth(data) == tree_hash([leaf_hash(d) for d in data])


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_every_inclusion_proof_verifies_and_no_other_leaf_does(
    data: list[bytes], draw: st.DataObject
) -> None:
    hashes = [leaf_hash(d) for d in data]
    size = draw.draw(st.integers(1, len(data)))
    index = draw.draw(st.integers(0, size - 1))
    root = tree_hash(hashes[:size])
    proof = inclusion_proof(hashes, index, size)
    assert root_from_inclusion(index, size, hashes[index], proof) == root
    other = leaf_hash(data[index] + b"x")
    with pytest.raises(ProofError):
        verify_inclusion(index, size, other, proof, root)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_every_consistency_proof_verifies_and_a_rewrite_does_not(
    data: list[bytes], draw: st.DataObject
) -> None:
    hashes = [leaf_hash(d) for d in data]
    size2 = draw.draw(st.integers(1, len(data)))
    size1 = draw.draw(st.integers(1, size2))
    root1, root2 = tree_hash(hashes[:size1]), tree_hash(hashes[:size2])
    proof = consistency_proof(hashes, size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    # Rewrite one leaf of the old tree: the new tree no longer extends the old root.
    victim = draw.draw(st.integers(0, size1 - 1))
    rewritten = list(hashes)
    rewritten[victim] = leaf_hash(data[victim] + b"rewritten")
    forged_root2 = tree_hash(rewritten[:size2])
    forged_proof = consistency_proof(rewritten, size1, size2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, forged_proof, root1, forged_root2)

"""The per-event loops in C (``_nativecodec.c``, issue 24): the encode step's (a staged
batch's JSONL lines, event hashes and columns, straight from its BSON bytes, with no
decoding); extract's read of each staged event's ``seq`` (``int_seqs``); the part's
Merkle tree (``merkle_extend``); and the read's framing of raw BSON (``complete_prefix``,
``document_offsets``, ``array_documents``: bsonpeek's walks).

The C module is optional (built where a compiler is found at install time; the image
builds it in a stage of its own and refuses a wheel without it: deploy/wheel_check.py)
and writes byte for byte what fastcodec writes, for every BSON type fastcodec writes
(rare ones included: Decimal128, Regex, Code with scope, DBRef, non-finite doubles,
far dates...), marking for read-back the lines the Python path reads back. Where it
cannot promise that (a size or length that lies, text not UTF-8, duplicate keys, a
shape decoding reads through a lost type: see the C file's header) it refuses the
whole batch and the caller runs the Python path on it, unchanged. ``ENABLED``
is the one switch (for all of them): tests and benchmarks set it to False to measure or
check the Python path alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from bson.int64 import Int64

from audit_archive.format.fastcodec import Batch, unproven_lines

try:
    from audit_archive.format import _nativecodec  # type: ignore[attr-defined]
except ImportError:  # not built: no compiler where the package was installed
    _nativecodec = None

ENABLED = True  # False: every batch takes the Python path (tests, benchmarks)

# The SHA-256 of the encoder's re-hashes and of the Merkle tree: hashlib's (a call per
# event, leaf and node), the portable C one, or the best this CPU has (SHA-NI where it
# has it, else portable: SHA256_BLOCK says which). The tests check all three.
HASHLIB, PORTABLE, BEST = 0, 1, 2
SHA256_BLOCK = getattr(_nativecodec, "SHA256_BLOCK", None)


def available() -> bool:
    """Whether the C module is built (whatever ENABLED says)."""
    return _nativecodec is not None


class Columns(NamedTuple):
    """A batch's ``seq`` (int, or Int64 where stored as int64, as decoding gives),
    ``prevHash`` and ``hash``, a list each: what the encode step checks the chain on.
    From the C encoder every value is there (it refuses a malformed event); from the
    Python path (archive/encode.py) None stands where a field is absent."""

    seqs: list[Any]
    prevs: list[Any]
    hashes: list[Any]


class NativeBatch(NamedTuple):
    """fastcodec's Batch for a staged chunk (its lines joined, re-hashes, the lines to
    read back) and the chunk's columns."""

    batch: Batch
    columns: Columns


def encode_chunk(chunk: bytes, sha256: int = BEST) -> NativeBatch | None:
    """The chunk's lines, re-hashes and columns, or None when the C module is off, not
    built, or refuses the chunk (the caller then decodes it and runs the Python path).

    The lines to read back are found as fastcodec finds them (``unproven_lines``: the
    ``"$`` keys counted against the wrappers the encoder wrote, per line; -1 where the
    line must be read back), so a string starting with "$" in an array or a payload key
    starting with "$" is handled exactly as on the Python path. The byte-exact re-encode
    check (fastcodec.decode_losses) is not needed: the C module read every stored byte
    and marks -1 each line whose document decoding would lose something (regex options
    out of order, a DBRef's field order, symbol, undefined, DBPointer). ``sha256``: which
    SHA-256 re-hashes the events (HASHLIB, PORTABLE or BEST)."""
    if _nativecodec is None or not ENABLED:
        return None
    out = _nativecodec.encode_chunk(chunk, hashlib.sha256, Int64, sha256)
    if out is None:
        return None
    joined, rehashes, wrote, seqs, prevs, hashes = out
    return NativeBatch(
        Batch(joined, rehashes, unproven_lines(joined, wrote)), Columns(seqs, prevs, hashes)
    )


def int_seqs(data: bytes) -> list[int | None] | None:
    """bsonpeek.int_seqs(data), or None when the C module is off, not built, or finds
    any document malformed or truncated (the caller then runs bsonpeek.int_seqs)."""
    if _nativecodec is None or not ENABLED:
        return None
    return _nativecodec.int_seqs(data)


def merkle_extend(
    stack: list[bytes], size: int, event_hashes_hex: Iterable[str], sha256: int = BEST
) -> int | None:
    """tlog.TreeBuilder.extend of the event hashes' Merkle leaves (merkle.leaf_hash) on a
    builder's ``stack`` (changed in place) and ``size``: the new size; None (nothing
    done) when the C module is off or not built. A hash bytes.fromhex refuses raises
    its ValueError or TypeError, as on the Python path, and leaves the stack as it was.
    ``sha256``: which SHA-256 (HASHLIB, PORTABLE or BEST; the tests check all three)."""
    if _nativecodec is None or not ENABLED:
        return None
    return _nativecodec.merkle_extend(stack, size, event_hashes_hex, hashlib.sha256, sha256)


def complete_prefix(data: bytes) -> int | None:
    """bsonpeek.complete_prefix(data), or None when the C module is off or not built."""
    if _nativecodec is None or not ENABLED:
        return None
    return _nativecodec.complete_prefix(data)


def document_offsets(data: bytes) -> Sequence[int] | None:
    """bsonpeek.document_offsets(data), or None when the C module is off, not built, or
    finds the documents do not add up to ``data`` (the caller then runs bsonpeek's)."""
    if _nativecodec is None or not ENABLED:
        return None
    packed = _nativecodec.document_offsets(data)
    return None if packed is None else memoryview(packed).cast("q")


def array_documents(array: bytes) -> bytes | None:
    """bsonpeek.array_documents(array), or None when the C module is off, not built, or
    refuses the array (the caller then runs bsonpeek's, which says what is wrong)."""
    if _nativecodec is None or not ENABLED:
        return None
    return _nativecodec.array_documents(array)

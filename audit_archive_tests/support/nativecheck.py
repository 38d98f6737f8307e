"""The C encoder (nativecodec) checked against the Python path, byte for byte: what
test_nativecodec.py and test_nativecodec_rare.py assert of every chunk it takes."""

from __future__ import annotations

import datetime as dt

import bson
from bson import ObjectId, encode

from audit_archive.format import bsonpeek, fastcodec, nativecodec
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, event_hash
from audit_archive.format.jsonl import relaxed_line

HASH = "ab" * 32


def event(seq: object = 7, **payload: object) -> dict:
    """A well-formed event: _id first, an int seq, a date, a hash."""
    return {
        "_id": ObjectId(b"\x01" * 12),
        "seq": seq,
        "at": dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC),
        **payload,
        "prevHash": "0" * 64,
        "hash": HASH,
    }


def assert_native_matches(raws: list[bytes]) -> nativecodec.NativeBatch:
    """The C encoder takes the chunk, and its lines equal json_util's (relaxed_line) and
    fastcodec's, its re-hashes canonical.event_hash's and fastcodec's, its lines to read
    back the Python path's (fastcodec.lines_to_check: the lines the count cannot prove
    and those whose document decoding loses something, with the stored bytes whole or
    one by one), the read-back's result the same, and its columns what decoding gives."""
    chunk = b"".join(raws)
    native = nativecodec.encode_chunk(chunk)
    assert native is not None, "the C encoder refused a chunk of its subset"
    reference = [bson.decode(raw, EVENT_CODEC_OPTIONS) for raw in raws]
    fast_docs = [bson.decode(raw, fastcodec.FAST_CODEC_OPTIONS) for raw in raws]
    fast = fastcodec.encode_batch(fast_docs)
    assert native.batch.joined == fast.joined
    assert native.batch.joined == b"".join(relaxed_line(d).encode() for d in reference)
    assert native.batch.rehashes == [event_hash(d) for d in reference] == fast.rehashes
    raw_of = raws.__getitem__
    unproven = fastcodec.lines_to_check(fast, fast_docs, chunk, raw_of)
    assert native.batch.unproven == unproven
    assert fastcodec.lines_to_check(fast, fast_docs, None, raw_of) == unproven
    assert fastcodec.make_readable(
        native.batch.joined, native.batch.unproven, native.batch.rehashes, raw_of
    ) == fastcodec.make_readable(fast.joined, unproven, fast.rehashes, raw_of)
    assert native.columns.seqs == [d["seq"] for d in fast_docs]
    assert [type(s) for s in native.columns.seqs] == [type(d["seq"]) for d in fast_docs]
    assert native.columns.prevs == [d.get("prevHash") for d in fast_docs]
    assert native.columns.hashes == [d["hash"] for d in fast_docs]
    return native


def refused(raw: bytes) -> bool:
    """Whether the C encoder refuses a chunk of a good event and this document."""
    return nativecodec.encode_chunk(encode(event(seq=1)) + raw) is None


def taken_or_refused(raw: bytes) -> bool:
    """A chunk of a good event and this document: refused (True), or taken (False) and
    written as the Python path writes it (assert_native_matches)."""
    if refused(raw):
        return True
    assert_native_matches([encode(event(seq=1)), raw])
    return False


def assert_mutation_matches(sample: bytes, flips: list[tuple[int, int]]) -> None:
    """``sample`` with the bytes at the flips' positions set to their values: the C
    encoder refuses it, or writes what the Python path writes for it."""
    raw = bytearray(sample)
    for position, value in flips:
        raw[position] = value
    chunk = bytes(raw)
    if nativecodec.encode_chunk(chunk) is not None:
        assert_native_matches([chunk[a:b] for a, b in bsonpeek.documents(chunk)])

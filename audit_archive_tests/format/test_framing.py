"""The read's framing of raw BSON (bsonpeek, and the same walks in C: nativecodec):
where a staged chunk's whole documents end, where each document starts, a cursor
reply's batch joined into the concatenated documents extract stages, and the reply
around that batch. The C walks give exactly the Python answer, or None (never another
answer, never a crash) on input whose sizes do not add up, and the caller then runs
the Python walk, which says what is wrong."""

from __future__ import annotations

import bson
import pytest
from bson import Int64, ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.format import bsonpeek, nativecodec
from audit_archive_tests.support import rawbson
from audit_archive_tests.support.samples import EVERY_BSON_TYPE

pytestmark = pytest.mark.skipif(not nativecodec.available(), reason="the C module is not built")

EVENTS = [
    bson.encode({"_id": ObjectId(b"\x02" * 12), "seq": 1, "payload": EVERY_BSON_TYPE}),
    bson.encode({"_id": ObjectId(b"\x03" * 12), "seq": Int64(2**40), "x": [1, {"y": 2}]}),
    bson.encode({}),
    bson.encode({"seq": 3, "s": "é" * 300}),
]


def as_array(docs: list[bytes]) -> bytes:
    """A batch as a server sends it: a BSON array of the documents."""
    return rawbson.document(*(rawbson.element(0x03, str(i), doc) for i, doc in enumerate(docs)))


def python_array_documents(array: bytes) -> bytes | None:
    try:
        return bsonpeek.array_documents(array)
    except (ValueError, IndexError):
        return None


# --- The specification, by example ---------------------------------------------------


def test_a_batch_array_becomes_its_documents_concatenated() -> None:
    array = as_array(EVENTS)
    assert nativecodec.array_documents(array) == bsonpeek.array_documents(array) == b"".join(EVENTS)
    assert (
        nativecodec.array_documents(as_array([])) == bsonpeek.array_documents(as_array([])) == b""
    )


@pytest.mark.parametrize(
    "array, problem",
    [
        (rawbson.document(rawbson.element(0x10, "0", b"\x01\x00\x00\x00")), "type 0x10"),
        (as_array(EVENTS)[:-1], "not one whole BSON array"),
        (as_array(EVENTS) + b"\x00", "not one whole BSON array"),
        (b"", "not one whole BSON array"),
        # an element whose document claims more bytes than the batch has
        (rawbson.document(b"\x030\x00" + b"\xff\x00\x00\x00" + b"\x00"), "does not fit"),
        # an element whose document does not end in its terminator
        (rawbson.document(b"\x030\x00" + b"\x06\x00\x00\x00\x01\x01"), "does not fit"),
    ],
)
def test_a_batch_that_is_not_an_array_of_whole_documents_is_refused(
    array: bytes, problem: str
) -> None:
    assert nativecodec.array_documents(array) is None
    with pytest.raises(ValueError, match=problem):
        bsonpeek.array_documents(array)


def test_offsets_and_the_complete_prefix_agree_with_the_python_walk() -> None:
    chunk = b"".join(EVENTS)
    ends = [0]
    for doc in EVENTS:
        ends.append(ends[-1] + len(doc))
    assert list(nativecodec.document_offsets(chunk)) == bsonpeek.document_offsets(chunk) == ends
    for cut in range(len(chunk) + 1):
        assert nativecodec.complete_prefix(chunk[:cut]) == bsonpeek.complete_prefix(chunk[:cut])
        assert bsonpeek.complete_prefix(chunk[:cut]) == max(e for e in ends if e <= cut)
    assert nativecodec.document_offsets(chunk[:-1]) is None  # the caller walks in Python


def test_a_size_field_below_five_ends_the_complete_prefix_instead_of_looping() -> None:
    chunk = EVENTS[0] + b"\x00\x00\x00\x00" + EVENTS[1]
    assert nativecodec.complete_prefix(chunk) == bsonpeek.complete_prefix(chunk) == len(EVENTS[0])


def test_a_reply_is_split_into_its_batch_and_the_rest() -> None:
    for key in ("firstBatch", "nextBatch"):
        reply = {
            "cursor": {key: [bson.decode(e) for e in EVENTS], "id": Int64(42), "ns": "db.events"},
            "ok": 1.0,
            "$clusterTime": {"clusterTime": bson.Timestamp(5, 1)},
        }
        array, found, rest = bsonpeek.cursor_batch(bson.encode(reply))
        assert found == key
        assert nativecodec.array_documents(array) == b"".join(EVENTS)
        expected = {**reply, "cursor": {"id": 42, "ns": "db.events"}}
        assert bson.decode(rest) == expected


def test_a_reply_without_a_batch_is_left_to_the_driver() -> None:
    assert bsonpeek.cursor_batch(bson.encode({"ok": 0.0, "errmsg": "no", "code": 2})) is None
    assert bsonpeek.cursor_batch(bson.encode({"cursor": 5, "ok": 1.0})) is None
    assert bsonpeek.cursor_batch(bson.encode({"cursor": {"id": 0, "firstBatch": 1}})) is None


# --- The C walks never answer differently, whatever the bytes ------------------------


@settings(max_examples=300, deadline=None)
@given(
    docs=st.lists(st.sampled_from(EVENTS), max_size=6),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3),
    cut=st.integers(min_value=0, max_value=20),
)
def test_mutated_bytes_get_the_python_answer_or_none(docs, flips, cut) -> None:
    for data in (as_array(docs), b"".join(docs)):
        mutated = bytearray(data)
        for at, value in flips:
            if mutated:
                mutated[at % len(mutated)] = value
        data = bytes(mutated[: max(0, len(mutated) - cut)] if cut % 3 == 0 else mutated)
        c = nativecodec.array_documents(data)
        assert c is None or c == python_array_documents(data)
        assert nativecodec.complete_prefix(data) == bsonpeek.complete_prefix(data)
        offsets = nativecodec.document_offsets(data)
        if offsets is not None:
            assert list(offsets) == bsonpeek.document_offsets(data)

"""nativecodec.int_seqs (the C module's read of each staged event's seq, for extract)
gives exactly bsonpeek.int_seqs's answer: the document's FIRST top-level ``seq`` as an
int when it is an int32 or int64, else None, whatever the layout; and on any malformed
or truncated input it gives None (never a different answer, never a crash), so the
caller runs bsonpeek.int_seqs as before."""

from __future__ import annotations

import struct
from types import FunctionType

import bson
import pytest
from bson import Int64, ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.archive.extract import StagedSeqs
from audit_archive.format import bsonpeek, nativecodec
from audit_archive_tests.support import rawbson
from audit_archive_tests.support.samples import EVERY_BSON_TYPE

OID = ObjectId(b"\x01" * 12)


def element(name: str, value: object) -> bytes:
    """One BSON element (type, name, value) as pymongo writes it."""
    return bson.encode({name: value})[4:-1]


# The types pymongo never writes but a stored document may hold: the walk steps over them.
RARE = [
    lambda name: rawbson.element(0x06, name, b""),  # undefined
    lambda name: rawbson.element(0x0E, name, rawbson.string(b"sym")),  # symbol
    lambda name: rawbson.element(0x0C, name, rawbson.string(b"coll") + b"\x01" * 12),  # DBPointer
]


def c_int_seqs(data: bytes) -> list[int | None] | None:
    assert nativecodec.available() and nativecodec.ENABLED
    return nativecodec.int_seqs(data)


def as_seq(value: object) -> int | None:
    """The spec: an int32 or int64 seq is its int; any other type is no integer seq."""
    return int(value) if type(value) in (int, Int64) else None


# --- The specification, by example ---------------------------------------------------


def test_the_usual_layout_int32_and_int64_in_one_chunk() -> None:
    chunk = b"".join(
        bson.encode({"_id": OID, "seq": seq, "hash": "ab" * 32})
        for seq in (1, -2**31, 2**31 - 1, Int64(5), Int64(2**63 - 1), Int64(-2**63), 2**40)
    )  # fmt: skip
    expected = [1, -2**31, 2**31 - 1, 5, 2**63 - 1, -2**63, 2**40]  # fmt: skip
    assert c_int_seqs(chunk) == bsonpeek.int_seqs(chunk) == expected
    assert all(type(s) is int for s in c_int_seqs(chunk))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"_id": OID, "seq": 5.0}, None),  # a double is no integer seq
        ({"_id": OID, "seq": "5"}, None),
        ({"_id": OID, "seq": None}, None),
        ({"_id": OID, "seq": True}, None),
        ({"_id": OID}, None),  # no seq at all
        ({}, None),  # the empty document
        ({"seq": 9}, 9),  # no _id
        ({"_id": "text id", "seq": 9}, 9),  # an _id that is not an ObjectId
        ({"_id": OID, "at": 1, "seq": Int64(9)}, 9),  # seq not second
        ({**EVERY_BSON_TYPE, "seq": 9}, 9),  # after every type pymongo writes
        ({"nested": {"seq": 1}, "list": [{"seq": 2}], "seq": 3}, 3),
        ({"nested": {"seq": 1}}, None),  # a nested seq is not the event's
        ({"seqs": 1, "se": 2, "Seq": 3, "seq\u00e9": 4}, None),  # only the name "seq"
    ],
)
def test_one_document(doc: dict, expected: int | None) -> None:
    raw = bson.encode(doc)
    assert c_int_seqs(raw) == bsonpeek.int_seqs(raw) == [expected]


def test_the_first_top_level_seq_counts_as_bsonpeek_find_returns_the_first() -> None:
    usual = rawbson.document(element("_id", OID), element("seq", 1), element("seq", 2))
    walked = rawbson.document(element("a", 0), element("seq", "x"), element("seq", 2))
    assert c_int_seqs(usual + walked) == bsonpeek.int_seqs(usual + walked) == [1, None]


def test_the_walk_steps_over_the_types_pymongo_never_writes() -> None:
    raw = rawbson.document(*(make(f"r{i}") for i, make in enumerate(RARE)), element("seq", 4))
    assert c_int_seqs(raw) == bsonpeek.int_seqs(raw) == [4]


def test_an_empty_input_has_no_documents() -> None:
    assert c_int_seqs(b"") == []


# --- Malformed or truncated: None, so the caller runs bsonpeek -----------------------

FIRST = bson.encode({"_id": OID, "seq": 1})
GOOD = FIRST + bson.encode({"a": 1, "seq": Int64(2)})


@pytest.mark.parametrize("cut", [k for k in range(1, len(GOOD)) if k != len(FIRST)])
def test_every_truncation_off_a_document_boundary_is_none(cut: int) -> None:
    assert c_int_seqs(GOOD[:cut]) is None


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack("<i", 4) + b"",  # shorter than the smallest document
        struct.pack("<i", 0) + b"\x00" * 8,  # a zero size (bsonpeek would never end)
        struct.pack("<i", -9) + b"\x00" * 8,
        rawbson.document(element("seq", 1))[:-1] + b"\x01",  # no final NUL
        rawbson.document(rawbson.element(0x42, "x", b""), element("seq", 1)),  # an unknown type
        rawbson.document(rawbson.element(0x02, "x", struct.pack("<i", -5)), element("seq", 1)),
        rawbson.document(rawbson.element(0x02, "x", struct.pack("<i", 999)), element("seq", 1)),
        rawbson.document(rawbson.element(0x10, "seq", b"\x01\x00")),  # an int32 of two bytes
        rawbson.document(rawbson.element(0x12, "seq", b"\x01" * 4)),  # an int64 of four bytes
        rawbson.document(b"\x10seq"),  # a name that never ends
        rawbson.document(rawbson.element(0x0B, "x", b"abc")),  # a regex that never ends
        # The usual layout, but the document ends before its seq does (bsonpeek reads
        # the next document's bytes there).
        rawbson.document(element("_id", OID), b"\x10seq\x00"),
    ],
    ids=lambda raw: raw.hex(),
)
def test_malformed_documents_are_none(raw: bytes) -> None:
    assert c_int_seqs(raw) is None
    assert c_int_seqs(GOOD + raw) is None
    assert c_int_seqs(raw + GOOD) is None


def test_a_non_bytes_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        c_int_seqs("text")  # type: ignore[arg-type]


# --- Differential: C against bsonpeek, and against the spec ---------------------------

seq_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),  # int32 where it fits, else int64
    st.integers(-(2**63), 2**63 - 1).map(Int64),  # int64 whatever the value
    st.floats(allow_nan=False),
    st.sampled_from(["7", None, True, b"7", *EVERY_BSON_TYPE.values()]),
)
other_names = st.sampled_from(["a", "hash", "_id", "se", "seqq", "Seq", "at", ""])
other_values = st.sampled_from([*EVERY_BSON_TYPE.values(), {"seq": 5}, [{"seq": 6}]])
elements = st.one_of(
    st.tuples(st.just("seq"), seq_values),
    st.tuples(other_names, other_values),
    st.tuples(other_names, st.sampled_from(RARE)),
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """A document (an ObjectId _id first, or not; seq anywhere, more than once, or not
    at all) and its seq by the spec."""
    fields = draw(st.lists(elements, max_size=6))
    if draw(st.booleans()):
        fields.insert(0, ("_id", OID))
    raws = [v(name) if isinstance(v, FunctionType) else element(name, v) for name, v in fields]
    seqs = [value for name, value in fields if name == "seq"]
    return rawbson.document(*raws), as_seq(seqs[0]) if seqs else None


chunks = st.lists(documents(), max_size=8)


@settings(max_examples=400, deadline=None)
@given(chunks)
def test_c_gives_bsonpeeks_answer_and_the_spec_on_any_well_formed_chunk(
    docs: list[tuple[bytes, int | None]],
) -> None:
    chunk = b"".join(raw for raw, _ in docs)
    got = c_int_seqs(chunk)
    assert got == bsonpeek.int_seqs(chunk) == [seq for _, seq in docs]
    assert [type(s) for s in got] == [type(s) for s in bsonpeek.int_seqs(chunk)]


@settings(max_examples=400, deadline=None)
@given(chunks, st.data())
def test_a_damaged_chunk_gives_none_or_bsonpeeks_answer_never_another(
    docs: list[tuple[bytes, int | None]], data: st.DataObject
) -> None:
    chunk = bytearray(b"".join(raw for raw, _ in docs) or b"\x05\x00\x00\x00\x00")
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(chunk) - 1))
        chunk[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(chunk)))
    damaged = bytes(chunk[:cut])
    got = c_int_seqs(damaged)
    if got is not None:  # bsonpeek may loop forever or raise on what C refuses
        assert got == bsonpeek.int_seqs(damaged)


# --- extract's caller: the same StagedSeqs with the C module on and off ---------------


@pytest.mark.parametrize(
    "chunk",
    [GOOD, GOOD[:-3], rawbson.document(b"\x10seq\x00\x07\x00")],
    ids=["good", "cut", "short"],
)
def test_staged_seqs_are_the_same_with_the_c_module_on_and_off(
    chunk: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def staged(enabled: bool) -> tuple:
        monkeypatch.setattr(nativecodec, "ENABLED", enabled)
        seqs = StagedSeqs()
        try:
            seqs.add(chunk + GOOD)
        except Exception as e:
            return (type(e), str(e))
        return (seqs.count, seqs.lo, seqs.hi, list(seqs.iter_holes()), seqs.well_formed)

    assert staged(True) == staged(False)

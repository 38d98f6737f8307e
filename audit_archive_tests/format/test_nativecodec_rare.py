"""The C encoder (nativecodec) on every BSON type beyond the ordinary ones (issue 24,
rare types): non-finite and tiny doubles, dates at the int64 extremes, Binary of every
subtype, Regex, Code (with scope, nested), Timestamp, Decimal128 (special values, any
bits), MinKey, MaxKey, DBRef (and the documents decoding reads as one), symbol,
undefined, DBPointer, keys starting with "$": each taken and written as the Python path
writes it (lines, re-hashes, lines to read back), or refused; never anything else."""

from __future__ import annotations

import struct

import pytest
from bson import (
    Binary,
    Code,
    DBRef,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    encode,
)
from bson.datetime_ms import DatetimeMS
from bson.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.format import bsonpeek, nativecodec
from audit_archive_tests.support import rawbson
from audit_archive_tests.support.nativecheck import (
    assert_mutation_matches,
    assert_native_matches,
    event,
    refused,
    taken_or_refused,
)
from audit_archive_tests.support.samples import EVERY_BSON_TYPE

_OID = ObjectId(b"\x02" * 12)
_keys = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)
_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_patterns = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)
_decimal_bits = st.one_of(
    st.binary(min_size=16, max_size=16),  # any bits: NaN payloads, sNaN, non-canonical
    st.sampled_from(
        [
            bytes.fromhex("0000000000000000000000000000007c"),  # NaN
            bytes.fromhex("000000000000000000000000000000fc"),  # -NaN
            bytes.fromhex("0000000000000000000000000000007e"),  # sNaN
            bytes.fromhex("01000000000000000000000000000078"),  # Infinity with stray bits
            bytes.fromhex("0000000000000000000000000000006a"),  # the large-coefficient form
            bytes.fromhex("ffffffffffffffffffffffffffff0130"),  # a coefficient beyond 34 digits
        ]
    ),
).map(Decimal128.from_bid)
_decimals = st.one_of(
    _decimal_bits,
    st.sampled_from(
        ["NaN", "-Infinity", "Infinity", "-0", "0E-6176", "1E+6111", "-0.000001", "1E-7", "9" * 34]
    ).map(Decimal128),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(
        lambda d: Decimal128(str(d)) if len(d.as_tuple().digits) <= 34 else Decimal128("1")
    ),
)
_doubles = st.one_of(
    st.floats(),
    st.sampled_from([-0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-5, 1e-4, 1.5e300]),
    st.binary(min_size=8, max_size=8).map(lambda b: struct.unpack("<d", b)[0]),  # NaN payloads
)
_binaries = st.tuples(
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0xFF]),
    st.sampled_from([b"", b"\x00" * 16, b"abc", b"\xff\xfe\x00\x01\x02"]) | st.binary(max_size=40),
).map(lambda t: Binary(t[1], t[0]) if t[0] else t[1])
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    _doubles,
    _texts,
    st.integers(-(2**63), 2**63 - 1).map(DatetimeMS),
    st.sampled_from([-(2**63), 2**63 - 1, -62_135_596_800_001, -62_135_596_800_000, -1, 0]).map(
        DatetimeMS
    ),
    st.builds(ObjectId, st.binary(min_size=12, max_size=12)),
    _binaries,
    st.builds(Regex, _patterns, st.sampled_from(["", "i", "imx", "ilmsux", "smix", "u"])),
    st.builds(Code, _texts),
    st.builds(Timestamp, st.sampled_from([0, 1, 2**32 - 1]), st.sampled_from([0, 7, 2**32 - 1])),
    _decimals,
    st.just(MinKey()),
    st.just(MaxKey()),
)
_dicts = st.dictionaries(_keys, st.deferred(lambda: _values), max_size=3)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(_keys, children, max_size=3),
        st.builds(Code, _texts, st.dictionaries(_keys, children, max_size=3)),
        st.builds(
            DBRef,
            _texts,
            children,
            st.none() | _texts,
            **{"extra": children},
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(_keys, _values, max_size=5), min_size=1, max_size=3))
def test_any_document_of_any_bson_type_is_written_as_the_python_path_writes_it(
    payloads: list,
) -> None:
    """Documents of every type the Python path writes, nested at random (Code with scope
    and DBRef holding any value, keys starting with "$", Decimal128 of any bits, NaNs
    with payloads, dates at the int64 extremes): the C encoder takes each chunk and
    writes what the Python path writes, the lines it reads back included."""
    reserved = ("_id", "seq", "at", "prevHash", "hash")
    docs = [
        event(i, **{k: v for k, v in p.items() if k not in reserved})
        for i, p in enumerate(payloads)
    ]
    assert_native_matches([encode(d) for d in docs])


def test_the_every_bson_type_chunk_is_taken() -> None:
    """What test_native_encode's `every` payload holds: the C encoder takes it."""
    assert nativecodec.encode_chunk(encode(event(**EVERY_BSON_TYPE))) is not None


def _el(kind: int, value: bytes, name: str = "v") -> bytes:
    return rawbson.element(kind, name, value)


def _usual(*extra: bytes) -> bytes:
    """A well-formed event (as test_nativecodec's) with these elements before its hash."""
    return rawbson.document(
        _el(0x10, struct.pack("<i", 1), "seq"),
        _el(0x09, struct.pack("<q", 1_700_000_000_000), "at"),
        *extra,
        _el(0x02, rawbson.string("ab" * 32), "hash"),
    )


def _sub(*elements: bytes) -> bytes:
    return _el(0x03, rawbson.document(*elements))


def _code_scope(
    code: bytes, scope: bytes, total: int | None = None, size: int | None = None
) -> bytes:
    body = struct.pack("<i", len(code) + 1 if size is None else size) + code + b"\x00" + scope
    return struct.pack("<i", len(body) + 4 if total is None else total) + body


_S = rawbson.string
_INT = struct.pack("<i", 1)
_SCOPE = rawbson.document(_el(0x10, _INT, "x"))

# Taken and written as the Python path (decoding loses some of these: read back alike).
_TAKEN = {
    "regex flags out of order": _el(0x0B, b"a\x00xmi\x00"),
    "regex flags repeated": _el(0x0B, b"a\x00mim\x00"),
    "regex flags unknown": _el(0x0B, b"a\x00iq\x00"),
    "regex every flag": _el(0x0B, b"^x$\x00ilmsux\x00"),
    "symbol": _el(0x0E, _S("sym")),
    "undefined": _el(0x06, b""),
    "DBPointer": _el(0x0C, _S("coll") + b"\x01" * 12),
    "binary subtype 2": _el(0x05, struct.pack("<i", 7) + b"\x02" + struct.pack("<i", 3) + b"abc"),
    "empty binary": _el(0x05, struct.pack("<i", 0) + b"\x80"),
    "code with empty scope": _el(0x0F, _code_scope(b"f()", rawbson.document())),
    "code with a $ref scope": _el(
        0x0F,
        _code_scope(b"f", rawbson.document(_el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"))),
    ),
    "DBRef $id first": _sub(_el(0x10, _INT, "$id"), _el(0x02, _S("c"), "$ref")),
    "DBRef null $db": _sub(
        _el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"), _el(0x0A, b"", "$db")
    ),
    "DBRef $db then extras": _sub(
        _el(0x02, _S("c"), "$ref"),
        _el(0x10, _INT, "$id"),
        _el(0x02, _S("d"), "$db"),
        _el(0x10, _INT, "$x"),
        _el(0x10, _INT, "a"),
    ),
    "DBRef extra before $db": _sub(
        _el(0x02, _S("c"), "$ref"),
        _el(0x10, _INT, "$id"),
        _el(0x10, _INT, "z"),
        _el(0x02, _S("d"), "$db"),
    ),
    "$ref not a string": _sub(_el(0x10, _INT, "$ref"), _el(0x10, _INT, "$id")),
    "$db an int": _sub(_el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"), _el(0x10, _INT, "$db")),
    "$ref without $id": _sub(_el(0x02, _S("c"), "$ref")),
    "top-level $ref and $id": _el(0x02, _S("c"), "$ref") + _el(0x10, _INT, "$id"),
    "a NaN with payload": _el(0x01, struct.pack("<Q", 0x7FF0000000000001)),
    "a negative NaN": _el(0x01, struct.pack("<Q", 0xFFF8000000000000)),
    "Decimal128 -NaN": _el(0x13, bytes.fromhex("000000000000000000000000000000fc")),
    "Decimal128 NaN with payload": _el(0x13, bytes.fromhex("0100000000000000000000000000007c")),
    "Decimal128 coefficient beyond 34 digits": _el(0x13, b"\xff" * 14 + b"\x01\x30"),
    "Decimal128 large-coefficient form": _el(0x13, b"\x00" * 15 + b"\x6a"),
}


@pytest.mark.parametrize("raw", list(_TAKEN.values()), ids=list(_TAKEN))
def test_raw_rare_shapes_are_taken_and_read_back_as_on_the_python_path(raw: bytes) -> None:
    """Stored shapes pymongo never writes, which decoding loses something of (regex
    flags out of order, a symbol, a DBRef's field order...) or whose text does not give
    back their bits (NaN payloads, odd Decimal128 bits): taken, and each line the
    Python path reads back the C path reads back too, with the same result."""
    assert_native_matches([_usual(raw), _usual()])


_REFUSED = {
    "regex without its terminator": b"\x0bv\x00a\x00im",
    "regex flags beyond ASCII": _el(0x0B, b"a\x00i\xc3\xa9\x00"),
    "regex pattern of invalid UTF-8": _el(0x0B, b"\xff\x00i\x00"),
    "binary length past the document": _el(0x05, struct.pack("<i", 99) + b"\x00ab"),
    "binary length negative": _el(0x05, struct.pack("<i", -1) + b"\x00"),
    "binary subtype 2 inner length lies": _el(
        0x05, struct.pack("<i", 7) + b"\x02" + struct.pack("<i", 2) + b"abc"
    ),
    "binary subtype 2 too short": _el(0x05, struct.pack("<i", 2) + b"\x02ab"),
    "code without its NUL": b"\x0dv\x00" + struct.pack("<i", 2) + b"ab",
    "code of invalid UTF-8": _el(0x0D, _S(b"\xff")),
    "code with scope total too big": _el(0x0F, _code_scope(b"f", _SCOPE, total=40)),
    "code with scope total too small": _el(0x0F, _code_scope(b"f", _SCOPE, total=20)),
    "code with scope code size lies": _el(0x0F, _code_scope(b"f", _SCOPE, size=5)),
    "code with scope code size 0": _el(0x0F, _code_scope(b"f", _SCOPE, size=0)),
    "code with scope, scope size lies": _el(0x0F, _code_scope(b"f", b"\x06" + _SCOPE[1:])),
    "code with scope, scope unterminated": _el(0x0F, _code_scope(b"f", _SCOPE[:-1] + b"\x01")),
    "code with scope, bytes after the scope": _el(0x0F, _code_scope(b"f", _SCOPE + b"\x00")),
    "code with scope, duplicate scope keys": _el(
        0x0F, _code_scope(b"f", rawbson.document(_el(0x10, _INT, "x"), _el(0x10, _INT, "x")))
    ),
    "DBPointer without its NUL": b"\x0cv\x00" + struct.pack("<i", 1) + b"c" + b"\x01" * 12,
    "DBPointer truncated": b"\x0cv\x00" + _S("c") + b"\x01" * 11,
    "symbol $ref": _sub(_el(0x0E, _S("c"), "$ref"), _el(0x10, _INT, "$id")),
    "symbol $db": _sub(
        _el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"), _el(0x0E, _S("d"), "$db")
    ),
    "undefined $db": _sub(
        _el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"), _el(0x06, b"", "$db")
    ),
    "code $ref": _sub(_el(0x0D, _S("c"), "$ref"), _el(0x10, _INT, "$id")),
    "code with scope $ref": _sub(
        _el(0x0F, _code_scope(b"c", _SCOPE), "$ref"), _el(0x10, _INT, "$id")
    ),
    "code $db": _sub(_el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"), _el(0x0D, _S("d"), "$db")),
    "DBRef duplicate $id": _sub(
        _el(0x02, _S("c"), "$ref"), _el(0x10, _INT, "$id"), _el(0x10, _INT, "$id")
    ),
    "timestamp truncated": b"\x11v\x00" + b"\x00" * 7,
    "decimal truncated": b"\x13v\x00" + b"\x00" * 15,
    "an unknown type": _el(0x14, b""),
    "type 0x80": _el(0x80, b""),
}


@pytest.mark.parametrize("raw", list(_REFUSED.values()), ids=list(_REFUSED))
def test_raw_rare_anomalies_are_refused(raw: bytes) -> None:
    """Sizes that do not add up, terminators missing, lengths that lie, text that is
    not UTF-8, keys decoding would merge or read through a lost type: refused."""
    assert refused(_usual(raw))


_RARE_SAMPLE = encode(event(Int64(9), **EVERY_BSON_TYPE)) + _usual(*_TAKEN.values())


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_RARE_SAMPLE) - 1), st.integers(0, 255)), max_size=3))
def test_whatever_rare_bytes_it_takes_are_written_as_the_python_path_writes_them(
    flips: list,
) -> None:
    """Bytes of every type's values changed at random (lengths, subtypes, flags, bits):
    the C encoder refuses the chunk, or writes what the Python path writes."""
    assert_mutation_matches(_RARE_SAMPLE, flips)


def test_taken_or_refused_helper() -> None:
    """The helper's two answers: a plain value is taken, a bad length refused."""
    assert not taken_or_refused(_usual(_el(0x10, _INT)))
    assert taken_or_refused(_usual(_REFUSED["binary length negative"]))


# One value of each element type, to stand as a DBRef's "$ref", "$id" or "$db".
_ONE_OF_EACH_TYPE = {
    "double": _el(0x01, struct.pack("<d", 1.5)),
    "string": _el(0x02, _S("c")),
    "document": _el(0x03, rawbson.document(_el(0x10, _INT, "x"))),
    "array": _el(0x04, rawbson.document(_el(0x10, _INT, "0"))),
    "binary": _el(0x05, struct.pack("<i", 1) + b"\x00" + b"b"),
    "undefined": _el(0x06, b""),
    "objectId": _el(0x07, b"\x01" * 12),
    "bool": _el(0x08, b"\x01"),
    "date": _el(0x09, struct.pack("<q", 5)),
    "null": _el(0x0A, b""),
    "regex": _el(0x0B, b"a\x00i\x00"),
    "dbPointer": _el(0x0C, _S("c") + b"\x01" * 12),
    "code": _el(0x0D, _S("c")),
    "symbol": _el(0x0E, _S("c")),
    "codeWithScope": _el(0x0F, _code_scope(b"f", _SCOPE)),
    "int32": _el(0x10, _INT),
    "timestamp": _el(0x11, struct.pack("<II", 1, 2)),
    "int64": _el(0x12, struct.pack("<q", 3)),
    "decimal": _el(0x13, Decimal128("1.5").bid),
    "maxKey": _el(0x7F, b""),
    "minKey": _el(0xFF, b""),
}


def _as(name: str, kind: str, raw: bytes | None = None) -> bytes:
    """The element of type ``kind`` (or the element ``raw``, named "v") renamed ``name``
    (the key follows the type byte)."""
    raw = _ONE_OF_EACH_TYPE[kind] if raw is None else raw
    return raw[:1] + name.encode() + raw[2:]


@pytest.mark.parametrize("field", ["$ref", "$id", "$db"])
@pytest.mark.parametrize("kind", list(_ONE_OF_EACH_TYPE))
def test_a_dbref_field_of_any_type_is_refused_or_written_as_the_python_path(
    field: str, kind: str
) -> None:
    """pymongo makes a DBRef of any document whose "$ref" is a str (a Code is one), with
    "$id", and "$db" absent, a str or None: every type in each of the three places is
    refused or written (and marked for read-back) as the Python path writes it."""
    fields = {"$ref": _el(0x02, _S("c"), "$ref"), "$id": _el(0x10, _INT, "$id")}
    fields[field] = _as(field, kind)
    taken_or_refused(_usual(_sub(*fields.values())))


def _type_byte_offsets(data: bytes, start: int = 0) -> list[int]:
    """Where each element's type byte is in the document at ``start``, nested documents,
    arrays and scopes included."""
    end = start + struct.unpack_from("<i", data, start)[0] - 1
    at, found = start + 4, []
    while at < end:
        kind, name_end = data[at], data.index(0, at + 1)
        found.append(at)
        value = name_end + 1
        if kind in (0x03, 0x04):
            found += _type_byte_offsets(data, value)
        elif kind == 0x0F:  # code with scope: int32 total, string, scope document
            found += _type_byte_offsets(
                data, value + 8 + struct.unpack_from("<i", data, value + 4)[0]
            )
        at = bsonpeek.value_end(data, kind, value)
    return found


_EVERY_EVENT = encode(event(Int64(9), **EVERY_BSON_TYPE))


def test_every_elements_type_byte_set_to_every_type_is_refused_or_written_alike() -> None:
    """Each element's type byte (nested ones too) replaced by each type's: the bytes that
    follow now mean something else, or nothing. The C encoder refuses the chunk, or
    writes what the Python path writes for it, every time."""
    offsets = _type_byte_offsets(_EVERY_EVENT)
    assert len(offsets) > 50
    taken = 0
    for at in offsets:
        for kind in {raw[0] for raw in _ONE_OF_EACH_TYPE.values()} | {0x00, 0x14}:
            chunk = bytearray(_EVERY_EVENT)
            chunk[at] = kind
            taken += not taken_or_refused(bytes(chunk))
    assert taken > 100, "the encoder takes many of them: the comparison ran"


# Keys decoding or the writers treat specially, and plain ones, for generated documents.
_KEYS = ["$ref", "$id", "$db", "$regex", "$options", "$date", "$oid", "$x", "a", "b", "0"]


def _raw_documents(depth: int = 2) -> st.SearchStrategy[bytes]:
    """Raw BSON documents of elements of every type under keys that mean something to
    decoding ("$ref", "$id", "$db") or to Extended JSON ("$regex", "$date", ...), in any
    order, nested in documents and arrays, duplicates included."""
    leaf = st.sampled_from(list(_ONE_OF_EACH_TYPE.values()))
    if depth == 0:
        values = leaf
    else:
        inner = _raw_documents(depth - 1)
        values = st.one_of(
            leaf, inner.map(lambda d: _el(0x03, d)), inner.map(lambda d: _el(0x04, d))
        )
    element = st.tuples(st.sampled_from(_KEYS), values).map(lambda kv: _as(kv[0], "x", kv[1]))
    return st.lists(element, max_size=5).map(lambda es: rawbson.document(*es))


@settings(max_examples=600, deadline=None)
@given(payload=_raw_documents())
def test_generated_documents_of_special_keys_and_every_type_are_refused_or_written_alike(
    payload: bytes,
) -> None:
    """Documents a DBRef or a wrapper may hide in, generated: refused, or written and
    marked for read-back exactly as the Python path does."""
    taken_or_refused(_usual(_el(0x03, payload, "payload")))

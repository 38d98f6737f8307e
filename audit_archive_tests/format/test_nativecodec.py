"""nativecodec (the C encoder, _nativecodec.c) writes byte for byte what the definitions
and fastcodec write, for every staged chunk it takes, and refuses (None: the Python
path runs) every chunk holding anything outside its subset."""

from __future__ import annotations

import datetime as dt
import math
import random
import struct

import bson
import pytest
from bson import Decimal128, Int64, ObjectId, encode
from bson.datetime_ms import DatetimeMS
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.format import fastcodec, nativecodec
from audit_archive.format.canonical import (
    END_DATETIME_MS,
    EVENT_CODEC_OPTIONS,
    canonical_json,
    event_body,
    event_hash,
)
from audit_archive_dev import seed
from audit_archive_tests.support import rawbson
from audit_archive_tests.support.nativecheck import (
    HASH,
    assert_mutation_matches,
    assert_native_matches,
    event,
    refused,
)
from audit_archive_tests.support.samples import EVERY_BSON_TYPE, WRAPPER_LOOKALIKES


def test_the_extension_is_built_in_the_dev_install() -> None:
    """CI proves the build did not silently fall back to the Python path."""
    assert nativecodec.available()
    assert nativecodec.ENABLED


def test_realistic_events_are_taken_and_written_as_the_definitions_do() -> None:
    rng = random.Random(3)
    events = list(seed.chain(seed.day_times(dt.date(2026, 8, 30), 300, rng), rng=rng))
    native = assert_native_matches([encode(e) for e in events])
    assert native.batch.rehashes == [e["hash"] for e in events]


@pytest.mark.parametrize("seq", [7, Int64(7), Int64(2**40), -(2**31), 2**31 - 1, Int64(-(2**63))])
def test_seqs_of_either_width_are_columns_as_decoding_gives_them(seq: object) -> None:
    assert_native_matches([encode(event(seq=seq))])


def test_a_chunk_mixing_int32_and_int64_seqs() -> None:
    assert_native_matches([encode(event(seq=s)) for s in (1, Int64(2), 3, Int64(4))])


def test_prev_hash_absent_null_or_any_string_is_taken() -> None:
    docs = [event(), event(), event(), event()]
    del docs[0]["prevHash"]
    docs[1]["prevHash"] = None
    docs[2]["prevHash"] = "not hex ☃"
    assert_native_matches([encode(d) for d in docs])


def test_every_escape_orjson_writes() -> None:
    """Controls (short escapes and \\u00xx), quotes, backslashes, DEL, U+2028/2029,
    non-BMP and NUL, in keys and values."""
    text = "".join(map(chr, range(0x80))) + '\u2028\u2029\u0085\ufeff\U0001f600é"\\'
    assert_native_matches([encode(event(s=text, **{'k\x01"\\\u2028é': [text, {"x": text}]}))])


def test_doubles_across_magnitudes_are_python_repr() -> None:
    rng = random.Random(6)
    values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(3000)]
    values += [10.0**e * m for e in range(-4, 30) for m in (1, 3, 7)]
    values += [0.0, -0.0, 1e-4, -1e-4, 1e16, 1e15, 123456789012345680.0, 1.7976931348623157e308]
    values = [v for v in values if fastcodec.written_as_repr(v)]
    assert_native_matches([encode(event(values=values, one=v)) for v in values[:200]])


def test_dates_from_1970_to_the_last_millisecond_of_9999() -> None:
    dates = [DatetimeMS(ms) for ms in (0, 1, 999, 1000, 86_399_999, END_DATETIME_MS - 1)]
    dates += [DatetimeMS(random.Random(1).randrange(END_DATETIME_MS)) for _ in range(200)]
    assert_native_matches([encode(event(when=d, many=dates)) for d in dates])


def test_nested_documents_arrays_object_ids_and_strings_starting_with_dollar() -> None:
    """A string value starting with "$" in an array makes a line's `,"$` count differ:
    it is read back exactly as on the Python path (the same unproven lines)."""
    payload = {
        "a": [[], {}, [[1, {"b": None}]], {"id": ObjectId(b"\x02" * 12)}, True, False],
        "d": {"z": 1, "a": {"y": Int64(5), "b": "x"}, "_id": 3, "hash": "kept below top"},
        "dollars": ["$x", "$y", {"k": "$v"}],
    }
    native = assert_native_matches([encode(event(**payload)), encode(event())])
    assert native.batch.unproven == [0]


def test_top_level_id_of_any_supported_type() -> None:
    docs = [event(), event()]
    docs[0]["_id"] = 5
    docs[1]["_id"] = {"nested": "doc"}
    assert_native_matches([encode(d) for d in docs])


# -- hypothesis: documents of the supported shapes ----------------------------------

_keys = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)
_keys = _keys.filter(lambda k: not k.startswith("$"))
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.floats(allow_nan=False, allow_infinity=False).filter(fastcodec.written_as_repr),
    st.sampled_from([-0.0, 1e16, 1e-4, -1e-4, 1e300, 5e15]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.integers(0, END_DATETIME_MS - 1).map(DatetimeMS),
    st.sampled_from([DatetimeMS(0), DatetimeMS(END_DATETIME_MS - 1)]),
    st.builds(ObjectId, st.binary(min_size=12, max_size=12)),
)
_values = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)
_seqs = st.integers(-(2**31), 2**31 - 1) | st.integers(-(2**63), 2**63 - 1).map(Int64)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_seqs, st.dictionaries(_keys, _values, max_size=6)), max_size=4))
def test_any_supported_document_is_written_as_the_definitions_do(events: list) -> None:
    reserved = ("_id", "seq", "at", "prevHash", "hash")
    docs = [
        event(seq, **{k: v for k, v in payload.items() if k not in reserved})
        for seq, payload in events
    ]
    assert_native_matches([encode(d) for d in [event(), *docs]])


_SAMPLE = encode(
    event(
        Int64(9),
        text='a"b\\c\n\x7f é ☃ \U0001f600',
        nested={"list": [1, Int64(-2), 2.5, -0.0, None, True, {"k": "v"}], "o": ObjectId()},
        when=DatetimeMS(86_400_123),
        number=1e-4,
    )
) + encode(event(3))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SAMPLE) - 1), st.integers(0, 255)), max_size=3))
def test_whatever_stored_bytes_it_takes_are_written_as_the_definitions_do(flips: list) -> None:
    """Stored bytes changed at random (sizes, types, keys, text): the C encoder refuses
    them, or they decode without loss and its output is the definitions' byte for byte."""
    assert_mutation_matches(_SAMPLE, flips)


# -- every BSON type the Python path writes ------------------------------------------


@pytest.mark.parametrize("name", sorted(EVERY_BSON_TYPE))
def test_every_bson_type_sample_is_taken_at_the_top_and_nested(name: str) -> None:
    """Each value of samples.EVERY_BSON_TYPE (non-finite doubles, far dates, Binary,
    Regex, Code, Timestamp, Decimal128, MinKey, MaxKey, DBRef...) is taken, at the top
    and inside documents and arrays, and written as the Python path writes it."""
    assert_native_matches([encode(event(value=EVERY_BSON_TYPE[name]))])
    assert_native_matches([encode(event(deep={"in": [1, EVERY_BSON_TYPE[name]]}))])


def test_the_whole_every_bson_type_sample_is_taken() -> None:
    """The benchmark's `every` event (one value of every type) takes the C path."""
    assert_native_matches([encode(event(**EVERY_BSON_TYPE)), encode(event())])


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        1e-5,
        -2.5e-7,
        5e-324,
        DatetimeMS(-1),
        DatetimeMS(END_DATETIME_MS),
        dt.datetime(1960, 1, 1, tzinfo=dt.UTC),
        Decimal128("1.5"),
        b"bytes",
    ],
    ids=repr,
)
def test_values_the_first_subset_refused_are_taken(value: object) -> None:
    """Doubles orjson writes unlike repr, dates outside 1970..9999, Decimal128, bytes."""
    assert_native_matches([encode(event(value=value))])
    assert_native_matches([encode(event(inside=[{"x": value}]))])


@pytest.mark.parametrize("payload", WRAPPER_LOOKALIKES, ids=lambda p: next(iter(p)))
def test_keys_starting_with_dollar_at_any_depth_are_read_back_as_on_the_python_path(
    payload: dict,
) -> None:
    """A payload key starting with "$" is written as itself and not counted as a
    wrapper, so its line is read back (unproven) exactly as on the Python path; a
    {"$ref", "$id"} document is a DBRef, as decoding makes it: its wrappers counted."""
    native = assert_native_matches([encode(event(**payload))])
    assert native.batch.unproven == ([] if "ref" in payload else [0])


def _int32(key: bytes, value: int) -> bytes:
    return rawbson.element(0x10, key, struct.pack("<i", value))


def _string(key: bytes, value: bytes) -> bytes:
    return rawbson.element(0x02, key, rawbson.string(value))


def _usual(extra: bytes = b"", seq: bytes | None = None, hash_: bytes = HASH.encode()) -> bytes:
    at = b"\x09at\x00" + struct.pack("<q", 1_700_000_000_000)
    return rawbson.document(
        (_int32(b"seq", 1) if seq is None else seq) + at + extra + _string(b"hash", hash_)
    )


def test_the_raw_helpers_make_a_document_it_takes() -> None:
    assert_native_matches([_usual(), _usual(_string(b"s", b"x") + _int32(b"n", 3))])


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_usual(_int32(b"n", 1) + _int32(b"n", 2)), id="duplicate keys"),
        pytest.param(
            _usual(b"\x03d\x00" + rawbson.document(_int32(b"n", 1) + _int32(b"n", 1))), id="nested"
        ),
        pytest.param(_usual(seq=_int32(b"seq", 1) + _int32(b"seq", 2)), id="duplicate seq key"),
        pytest.param(_usual(b"\x08b\x00\x02"), id="bool byte 2"),
        pytest.param(
            _usual(b"\x04a\x00" + rawbson.document(_int32(b"1", 1) + _int32(b"0", 2))),
            id="keys 1, 0",
        ),
        pytest.param(
            _usual(b"\x04a\x00" + rawbson.document(_int32(b"0", 1) + _int32(b"2", 2))),
            id="keys 0, 2",
        ),
        pytest.param(_usual(b"\x04a\x00" + rawbson.document(_int32(b"x", 1))), id="array key x"),
        pytest.param(_usual(_string(b"s", b"\xff")), id="invalid UTF-8"),
        pytest.param(_usual(_string(b"s", b"\xc0\xaf")), id="overlong"),
        pytest.param(_usual(_string(b"s", b"\xed\xa0\x80")), id="a surrogate"),
        pytest.param(_usual(_string(b"s", b"\xf4\x90\x80\x80")), id="beyond U+10FFFF"),
        pytest.param(_usual(_string(b"s", b"\xe2\x82")), id="truncated sequence"),
        pytest.param(_usual(_int32(b"\xff", 1)), id="a key of invalid UTF-8"),
        pytest.param(
            _usual(b"\x02s\x00" + struct.pack("<i", 3) + b"ab"), id="string without its NUL"
        ),
        pytest.param(_usual(b"\x02s\x00" + struct.pack("<i", 0) + b"\x00"), id="string length 0"),
        pytest.param(
            _usual(b"\x02s\x00" + struct.pack("<i", 0)), id="string length 0, its own last byte 0"
        ),
        pytest.param(_usual(b"\x03d\x00" + struct.pack("<i", 4)), id="document length too small"),
        pytest.param(
            _usual(_int32(b"_id", 1)), id="_id not first (pymongo's encoder writes it first)"
        ),
        pytest.param(_usual(seq=b"\x01seq\x00" + struct.pack("<d", 1.0)), id="seq a double"),
        pytest.param(_usual(seq=_string(b"seq", b"1")), id="seq a string"),
        pytest.param(_usual(seq=b""), id="no seq"),
        pytest.param(_usual(hash_=b"AB" * 32), id="upper-case hash"),
        pytest.param(_usual(hash_=b"ab" * 31), id="short hash"),
        pytest.param(_usual(hash_=HASH.encode() + b"\n"), id="a hash with a newline (HEX64's $)"),
        pytest.param(
            rawbson.document(_int32(b"seq", 1) + _string(b"hash", HASH.encode())), id="no at"
        ),
        pytest.param(_usual(_int32(b"prevHash", 1)), id="prevHash an int"),
        pytest.param(_usual()[:-1], id="truncated"),
        pytest.param(_usual()[:-1] + b"\x01", id="no terminator"),
        pytest.param(_usual() + b"\x00", id="trailing byte"),
    ],
)
def test_raw_anomalies_are_refused(raw: bytes) -> None:
    assert refused(raw)


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep: object = 1
    for _ in range(70):
        deep = {"d": deep}
    assert refused(encode(event(deep=deep)))


def test_an_empty_chunk_is_refused() -> None:
    assert nativecodec.encode_chunk(b"") is None


def test_switched_off_it_takes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nativecodec, "ENABLED", False)
    assert nativecodec.encode_chunk(encode(event())) is None


@pytest.mark.parametrize(
    "sha256", [nativecodec.HASHLIB, nativecodec.PORTABLE, nativecodec.BEST], ids=str
)
def test_each_sha256_re_hashes_bodies_of_every_length_as_hashlib(sha256: int) -> None:
    """The re-hash is SHA-256 in C (SHA-NI where the CPU has it, else portable): on
    hashed bodies of every length around the padding's edges (55, 56, 63, 64, 119, 120,
    128 bytes of canonical JSON) and of many blocks, each of the three gives
    canonical.event_hash's hex."""
    at = dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC)
    events = [
        {"_id": ObjectId(), "seq": 1, "at": at, "n": "x" * pad, "hash": HASH}
        for pad in range(0, 300)
    ]
    events += [event(note="y" * 5000), event(note="\u00e9\U0001f600" * 700)]
    native = nativecodec.encode_chunk(b"".join(encode(e) for e in events), sha256)
    assert native is not None
    decoded = [bson.decode(encode(e), EVENT_CODEC_OPTIONS) for e in events]
    assert native.batch.rehashes == [event_hash(d) for d in decoded]
    lengths = {len(canonical_json(event_body(d))) for d in decoded}
    assert {55, 56, 63, 64, 119, 120, 128} <= lengths, "the padding's edges are covered"
    assert max(lengths) > 5000

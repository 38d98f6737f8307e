"""fastcodec writes exactly the bytes of the definitions, for every BSON type: the hash
of canonical.py and the line of pymongo's json_util (jsonl.relaxed_line), an encoder
independent of this project; and takes its fast path for realistic events."""

from __future__ import annotations

import datetime as dt
import random
import struct

import orjson
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
    Timestamp,
    decode,
    encode,
)
from bson.datetime_ms import DatetimeMS
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.format import fastcodec
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, event_hash
from audit_archive.format.decimaltext import decimal_text
from audit_archive.format.jsonl import relaxed_line
from audit_archive_dev import seed
from audit_archive_tests.support.samples import EVERY_BSON_TYPE

EVERY_TYPE = {
    "_id": ObjectId("64f0c0ffee0123456789abcd"),
    "seq": 1446,
    "big": Int64(2**62),
    "small_int64": Int64(5),
    "at": dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC),
    "whole_second": dt.datetime(2026, 8, 30, 12, 0, 0, tzinfo=dt.UTC),
    "epoch": dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    "last_ms_of_9999": DatetimeMS(253402300800000 - 1),
    "before_1970": dt.datetime(1960, 1, 1, 0, 0, 0, 5000, tzinfo=dt.UTC),
    "year_999": dt.datetime(999, 3, 4, 5, 6, 7, 8000, tzinfo=dt.UTC),
    "after_9999": DatetimeMS(253402300800000 + 1000),
    "before_year_1": DatetimeMS(-62135596800000 - 1000),
    "floats": [2.0, 0.1, -0.0, 1e300, 1e16, 1e-05, 5e-324, 123456.789],
    "non_finite": [float("nan"), float("inf"), float("-inf")],
    "decimal": Decimal128("-1.5E+10"),
    "bytes": b"\x00\x01\xff",
    "uuid": Binary(b"\x12" * 16, 4),
    "user_binary": Binary(b"x", 0x80),
    "regex": Regex("^a.*z$", "imsx"),
    "ts": Timestamp(1_700_000_000, 3),
    "code": Code("function () { return 1; }"),
    "code_scope": Code("f(x)", {"x": 1.5, "when": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}),
    "ref": DBRef("other", ObjectId("64f0c0ffee0123456789abce")),
    "ref_db_extra": DBRef("other", 5, "db", {"note": "x", "$extra": Int64(2)}),
    "keys": [MinKey(), MaxKey()],
    "nested": {"list": [1, "two", None, True, {"deep": ["é", "✓", "\u2028", "\x00\x1f"]}]},
    "prevHash": "0" * 64,
    "hash": "f" * 64,
}


def both(doc: dict) -> tuple[dict, dict]:
    """The document as the reference functions and as fastcodec receive it from Mongo."""
    raw = encode(doc)
    return decode(raw, EVENT_CODEC_OPTIONS), decode(raw, fastcodec.FAST_CODEC_OPTIONS)


def fast_bytes(docs: list[dict]) -> tuple[list[bytes], list[str]]:
    """The archive's lines and event hashes for FAST_CODEC_OPTIONS documents."""
    encoded = fastcodec.encode_batch(docs)
    return encoded.lines, encoded.rehashes


def assert_same_bytes(doc: dict) -> None:
    reference, fast = both(doc)
    expected_hash, expected_line = event_hash(reference), relaxed_line(reference).encode()
    assert fast_bytes([fast]) == ([expected_line], [expected_hash])


@pytest.mark.parametrize("field", sorted(k for k in EVERY_TYPE if k not in ("_id", "seq")))
def test_each_bson_type_hashes_and_writes_as_the_definitions_do(field: str) -> None:
    assert_same_bytes({"_id": EVERY_TYPE["_id"], "seq": 1, field: EVERY_TYPE[field]})


def test_a_document_of_every_type_at_once_matches_the_definitions() -> None:
    assert_same_bytes(EVERY_TYPE)


def test_doubles_are_written_as_python_repr_across_the_whole_range() -> None:
    rng = random.Random(6)
    values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(3000)]
    values += [10.0**e * m for e in range(-30, 30) for m in (1, 3, 7)]
    assert_same_bytes({"_id": 1, "seq": 1, "values": values})
    for value in values[:50]:
        assert_same_bytes({"_id": 1, "seq": 1, "value": value})


def test_realistic_events_hash_and_write_as_the_definitions_do() -> None:
    rng = random.Random(3)
    events = list(seed.chain(seed.day_times(dt.date(2026, 8, 30), 300, rng), rng=rng))
    decoded = [both(e) for e in events]
    lines, hashes = fast_bytes([fast for _, fast in decoded])
    assert lines == [relaxed_line(reference).encode() for reference, _ in decoded]
    assert hashes == [e["hash"] for e in events]


def test_doubles_called_safe_are_written_as_repr() -> None:
    """The premise of FAST_CODEC_OPTIONS's doubles, on 200,000 doubles of every magnitude:
    orjson writes every double written_as_repr calls safe as Python's repr; the others
    are decoded as _Double and written by the hooks."""
    rng = random.Random(9)
    values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(150_000)]
    values += [rng.uniform(1e-5, 1e-3) for _ in range(25_000)]
    values += [rng.uniform(1e15, 1e17) for _ in range(25_000)]
    values += [0.0, -0.0, 1e-4, -1e-4, 5e-324, float("nan"), float("inf")]
    safe = [v for v in values if fastcodec.written_as_repr(v)]
    assert len(safe) > 100_000
    assert all(orjson.dumps(v) == repr(v).encode() for v in safe)
    unsafe = [v for v in values if not fastcodec.written_as_repr(v)]
    assert len(unsafe) > 20_000
    assert_same_bytes({"_id": 1, "seq": 1, "unsafe": unsafe[:2000]})


def test_every_bson_type_of_the_samples_matches_the_definitions() -> None:
    assert_same_bytes({"_id": EVERY_TYPE["_id"], "seq": 1, **EVERY_BSON_TYPE})


def test_a_value_of_no_bson_type_fails_the_encoding() -> None:
    with pytest.raises(orjson.JSONEncodeError, match="set"):
        fastcodec.encode_batch([{"_id": ObjectId(), "seq": 1, "x": [1, {2}]}])


_keys = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
).filter(lambda k: not k.startswith("$"))
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.datetimes(
        min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)
    ).map(lambda d: d.replace(tzinfo=dt.UTC)),
    st.integers(-(2**62), 2**62).map(DatetimeMS),
    st.binary(max_size=8),
    st.builds(Binary, st.binary(max_size=8), st.sampled_from([0, 3, 4, 5, 0x80])),
    st.builds(ObjectId, st.binary(min_size=12, max_size=12)),
    st.builds(Decimal128, st.decimals(min_value=-(10**9), max_value=10**9, places=3).map(str)),
    st.binary(min_size=16, max_size=16).map(Decimal128.from_bid),  # any bits, NaNs too
    st.builds(Timestamp, st.integers(0, 2**31), st.integers(0, 2**31)),
    st.builds(Regex, st.text("ab^$.*", max_size=5), st.sampled_from(["", "i", "ms"])),
    st.builds(Code, st.text("abc(){}", max_size=8)),
    st.builds(
        Code,
        st.text("abc", max_size=4),
        st.dictionaries(
            st.text("xy$", max_size=2),
            st.floats() | st.integers(0, 9) | st.just(DatetimeMS(-5)),
            max_size=3,
        ),
    ),
    st.builds(
        DBRef,
        st.text("ab", min_size=1, max_size=3),
        st.builds(ObjectId) | st.floats(),
        st.none() | st.just("db"),
    ),
    st.sampled_from([MinKey(), MaxKey(), 1e-05, -2.5e-7, float("nan"), float("-inf")]),
)
_values = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_document_hashes_and_writes_as_the_definitions_do(payload: dict) -> None:
    assert_same_bytes({"_id": ObjectId(b"\x01" * 12), "seq": 7, **payload})


@settings(max_examples=2000, deadline=None)
@given(
    st.binary(min_size=16, max_size=16).map(Decimal128.from_bid)
    | st.builds(
        lambda sign, coefficient, exponent: Decimal128(f"{sign}{coefficient}E{exponent}"),
        st.sampled_from(["", "-"]),
        st.integers(0, 10**34 - 1) | st.integers(0, 999),
        st.integers(-6176, 6111) | st.integers(-40, 10),
    )
)
def test_decimal128_text_is_pymongos(value: Decimal128) -> None:
    assert decimal_text(value) == str(value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e-4, -1e-4, -0.0]))
def test_the_decoder_keeps_as_floats_exactly_the_doubles_written_as_repr(value: float) -> None:
    """FAST_CODEC_OPTIONS wraps every other double (in _Double) for the hooks to write."""
    decoded = decode(encode({"x": value}), fastcodec.FAST_CODEC_OPTIONS)["x"]
    assert (type(decoded) is float) == fastcodec.written_as_repr(value)

"""Fuzzed payloads of every BSON type survive the archive unchanged and still re-hash.

Hypothesis builds arbitrary payload documents (nested documents and arrays, unicode
edge cases, huge strings, Decimal128 NaN and infinities, extreme Int64, NaN and -0.0
doubles, dates before 1970 and far ahead, binaries of every subtype, ObjectIds and the
rarer types); each is stored as BSON (as MongoDB would), written as a JSONL line the
way the archive writes it (both the fast encoder and the reference one), read back with
``parse_line`` (what restore does) and compared: same values, same types, same hash.
A small end-to-end test runs the real job over one event per kind of value.

Payload keys starting with ``$`` are left out here: an object a parser takes for a type
wrapper (``{"$date": ...}``) is written as a ``{"bson": ...}`` line (SPEC 3), covered by
test_readback.py.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import bson
from bson import Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.binary import Binary
from bson.datetime_ms import DatetimeMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_archive.format import fastcodec, layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, ZERO_HASH, event_hash
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS
from audit_archive.format.jsonl import parse_line, relaxed_line
from audit_archive_tests.support.harness import Harness, due_day, same_value
from audit_archive_tests.support.reliability import append_events, failure_messages

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UTC = dt.UTC

keys = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12)
keys = keys.filter(lambda k: not k.startswith("$"))
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["", "\u0000 nul inside", "é", "\U0001f600", "\u202e rtl", 'a\nb\tc"d\\e', "\ufeff"]
)
huge_texts = st.integers(100_000, 400_000).map(lambda n: "x" * n + "☃")
datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 1),
    max_value=dt.datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
far_dates = st.integers(-(2**62), 2**62).map(DatetimeMS)  # outside Python's datetime
decimals = st.builds(
    lambda sign, coefficient, exponent: Decimal128(f"{sign}{coefficient}E{exponent}"),
    st.sampled_from(["", "-"]),
    st.integers(0, 10**34 - 1),  # 34 digits: every Decimal128 is exact
    st.integers(-6176, 6111),
) | st.sampled_from(
    [Decimal128(x) for x in ("NaN", "-NaN", "Infinity", "-Infinity", "-0", "0E-6176", "1E+6144")]
)
binaries = st.builds(
    Binary,
    st.binary(max_size=64),
    st.sampled_from([0, 1, 2, 3, 5, 6, 7, 8, 0x80, 0xFF]),
) | st.builds(
    lambda b, t: Binary(b, t), st.binary(min_size=16, max_size=16), st.sampled_from([3, 4])
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(INT64_MIN, INT64_MAX).map(Int64),
    st.sampled_from([Int64(INT64_MIN), Int64(INT64_MAX), 2**31 - 1, -(2**31)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]),
    decimals,
    texts,
    datetimes,
    far_dates,
    binaries,
    st.builds(ObjectId),
    st.builds(
        lambda p, f: Regex(p, f),
        st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8),
        st.sampled_from(["", "i", "ms", "ilmsux"]),
    ),
    st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(Code, texts),
    st.builds(Code, texts, st.dictionaries(keys, st.integers(0, 9), max_size=2)),
    st.builds(DBRef, st.text("abc", min_size=1, max_size=5), st.builds(ObjectId)),
    st.just(MinKey()),
    st.just(MaxKey()),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)
payloads = st.dictionaries(
    keys.filter(lambda k: k not in ("_id", "seq", "at", "prevHash", "hash")), values, max_size=6
)


def stored(payload: dict[str, Any], at: dt.datetime) -> bytes:
    """A chained event with this payload, as BSON bytes (what Mongo holds)."""
    event = {"_id": ObjectId(), "seq": 7, "at": at, "prevHash": ZERO_HASH, **payload}
    event["hash"] = event_hash(bson.decode(bson.encode(event), EVENT_CODEC_OPTIONS))
    return bson.encode(event)


def assert_survives(raw: bytes) -> None:
    original = bson.decode(raw, EVENT_CODEC_OPTIONS)
    assert event_hash(original) == original["hash"]
    reference = parse_line(relaxed_line(original))
    assert same_value(reference, original), "reference JSONL line changed the event"
    assert event_hash(reference) == original["hash"], "restored event does not re-hash"
    fast_doc = bson.decode(raw, FAST_CODEC_OPTIONS)
    encoded = fastcodec.encode_batch([fast_doc])
    [line], [rehash] = encoded.lines, encoded.rehashes
    restored = parse_line(line)
    assert same_value(restored, original), "the archive's JSONL line changed the event"
    assert rehash == original["hash"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads, datetimes)
def test_any_payload_survives_jsonl_and_restore_and_re_hashes(payload: dict, at: dt.datetime):
    assert_survives(stored(payload, at))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, huge_texts, min_size=1, max_size=2), datetimes)
def test_huge_strings_survive_too(payload: dict, at: dt.datetime) -> None:
    assert_survives(stored(payload, at))


def kitchen_sink() -> list[dict[str, Any]]:
    """One payload per kind of value the issue names, at its edges."""
    return [
        {"nested": {"a": [1, {"b": [[], {}, [None]]}], "c": {"d": {"e": "deep"}}}},
        {"unicode": ["é", "\U0001f600", "\u202e", "\u0000x", "\ufeff", "日本語"]},
        {"huge": "y" * 300_000},
        {"dec": [Decimal128(x) for x in ("NaN", "Infinity", "-Infinity", "-0", "1E+6144")]},
        {"int64": [Int64(INT64_MIN), Int64(INT64_MAX), Int64(0), 2**31 - 1]},
        {"floats": [math.nan, -0.0, math.inf, -math.inf, 5e-324, 0.1, 1e300, 1e-7]},
        {
            "dates": [
                dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
                dt.datetime(1, 1, 1, tzinfo=UTC),
                dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
                # Dates beyond years 1..9999 (DatetimeMS) are fuzzed above; SecantusDB,
                # a Python server, cannot store them (MongoDB can).
            ]
        },
        {"bins": [Binary(bytes(range(16)), t) for t in (0, 1, 2, 3, 4, 5, 6, 7, 8, 0x80)]},
        {"oids": [ObjectId(), ObjectId("000000000000000000000000")]},
        {"rare": [Regex("^a.*$", "im"), Timestamp(1, 2), Code("f()", {"x": 1}), MinKey()]},
        {"more": [MaxKey(), DBRef("coll", ObjectId()), Code("g()"), None, True]},
    ]


def test_every_kind_of_value_survives_a_real_run(harness: Harness) -> None:
    day = due_day(2)
    start = layout.day_bounds(day)[0]
    sinks = kitchen_sink()
    events = append_events(
        harness, [start + dt.timedelta(hours=i) for i in range(len(sinks))], sinks.__getitem__
    )
    for e in events:  # what the harness compares with: the event as Mongo returns it
        e.update(bson.decode(bson.encode(e), EVENT_CODEC_OPTIONS))

    result = harness.run(day)

    assert result.success, failure_messages(result)
    restored = {e["_id"]: e for e in harness.part_events(day)}
    for e in events:
        assert same_value(restored[e["_id"]], e)
        assert event_hash(restored[e["_id"]]) == e["hash"]
    harness.assert_invariant()

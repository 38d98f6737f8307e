"""The hash scheme sha256-canonical-json-v1, value by value, as SPEC section 1 defines it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.binary import UuidRepresentation

from audit_archive.format.canonical import canonical_json, canonical_value, event_hash


def test_keys_are_sorted_and_there_is_no_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}})
        == b'{"a":{"c":null,"d":[1,2]},"b":1}'
    )


def test_non_ascii_is_written_as_itself_in_utf8() -> None:
    assert canonical_json({"name": "Zoë ✓"}) == '{"name":"Zoë ✓"}'.encode()


def test_dates_have_exactly_three_fraction_digits_in_utc() -> None:
    at = dt.datetime(2026, 8, 30, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert canonical_value(at) == "2026-08-30T12:00:00.123Z"
    assert canonical_value(at.replace(microsecond=0)) == "2026-08-30T12:00:00.000Z"
    cet = dt.timezone(dt.timedelta(hours=2))
    assert (
        canonical_value(dt.datetime(2026, 8, 30, 14, 0, tzinfo=cet)) == "2026-08-30T12:00:00.000Z"
    )
    assert canonical_value(dt.datetime(1960, 1, 1, tzinfo=dt.UTC)) == "1960-01-01T00:00:00.000Z"


def test_int32_and_int64_hash_alike() -> None:
    assert canonical_json({"n": 5}) == canonical_json({"n": Int64(5)}) == b'{"n":5}'


def test_doubles_are_shortest_round_trip_and_non_finite_are_bare_tokens() -> None:
    values = [2.0, 0.1, -0.0, 1e300, float("nan"), float("inf"), float("-inf")]
    assert canonical_json(values) == b"[2.0,0.1,-0.0,1e+300,NaN,Infinity,-Infinity]"


def test_object_ids_decimals_and_binaries() -> None:
    oid = ObjectId("64f0c0ffee0123456789abcd")
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    doc = {
        "o": oid,
        "d": Decimal128("1.10"),
        "b": b"\x00\xff",
        "u": Binary.from_uuid(u, UuidRepresentation.STANDARD),
        "x": Binary(b"abc", 0x80),
    }
    assert json.loads(canonical_json(doc)) == {
        "o": "64f0c0ffee0123456789abcd",
        "d": "1.10",
        "b": "AP8=",
        "u": "EjRWeBI0VngSNFZ4EjRWeA==",  # the UUID's 16 bytes, whatever the subtype
        "x": "YWJj",
    }


def test_other_bson_types_hash_as_their_relaxed_extended_json() -> None:
    assert json.loads(canonical_json({"r": Regex("^a", "i"), "t": Timestamp(7, 1)})) == {
        "r": {"$regularExpression": {"options": "i", "pattern": "^a"}},
        "t": {"$timestamp": {"i": 1, "t": 7}},
    }


def test_event_hash_covers_everything_but_id_and_hash() -> None:
    event = {
        "_id": ObjectId(),
        "seq": 1446,
        "at": dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC),
        "source": "authentik",
        "action": "user.login",
        "actor": {"id": "u42", "ip": "203.0.113.9"},
        "prevHash": "0" * 64,
    }
    body = (
        '{"action":"user.login","actor":{"id":"u42","ip":"203.0.113.9"},'
        '"at":"2026-08-30T12:00:00.123Z","prevHash":"' + "0" * 64 + '","seq":1446,'
        '"source":"authentik"}'
    )
    expected = hashlib.sha256(body.encode()).hexdigest()
    assert event_hash(event) == expected
    assert event_hash({**event, "_id": ObjectId(), "hash": "whatever"}) == expected
    assert event_hash({**event, "seq": 1447}) != expected


def test_dates_before_year_1000_hash_with_a_four_digit_year() -> None:
    """SPEC section 1 writes dates as YYYY-MM-DDTHH:MM:SS.mmmZ: a year before 1000 is
    zero-padded (strftime's %Y is not, on Linux)."""
    value = dt.datetime(999, 3, 4, 5, 6, 7, 8000, tzinfo=dt.UTC)
    assert canonical_value(value) == "0999-03-04T05:06:07.008Z"
    assert canonical_value(dt.datetime(1, 1, 1, tzinfo=dt.UTC)) == "0001-01-01T00:00:00.000Z"

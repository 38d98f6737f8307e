"""Canonical JSON and the event hash (scheme ``sha256-canonical-json-v1``).

The hash is the chain's only notion of identity, so this module is the one place that
turns BSON values into the bytes that are hashed. Every reader (archiver, verifier,
restore, proofs) calls :func:`event_hash`; nothing re-implements it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bson import ObjectId, json_util
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.decimal128 import Decimal128

HASH_SCHEME = "sha256-canonical-json-v1"
ZERO_HASH = "0" * 64

# How every component decodes events: timezone-aware UTC datetimes, dates outside
# Python's range kept as DatetimeMS instead of raising, and binaries as bytes whatever
# their subtype (UNSPECIFIED keeps subtype-4 UUIDs as Binary, so they hash as 16 bytes).
EVENT_CODEC_OPTIONS: CodecOptions = CodecOptions(
    tz_aware=True,
    tzinfo=dt.UTC,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

# Relaxed Extended JSON v2, decoded back with the same types as EVENT_CODEC_OPTIONS.
RELAXED_JSON_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED,
    tz_aware=True,
    tzinfo=dt.UTC,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = _EPOCH.date()
_ONE_MS = dt.timedelta(milliseconds=1)
MIN_DATETIME_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z, Python's first datetime
END_DATETIME_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, one past its last

_day_cache: dict[int, str] = {}
_minute_cache: dict[int, str] = {}
_SECONDS = [f":{second:02d}" for second in range(60)]
MILLIS_TEXT = [f".{millis:03d}Z" for millis in range(1000)]  # formatting one costs more


def _day_prefix(days: int) -> str:
    text = _day_cache.get(days)
    if text is None:
        # Four-digit years, as SPEC section 1 writes them (YYYY): strftime's %Y would
        # leave years before 1000 unpadded on Linux, and an independent checker's hash of
        # such a date would then differ from ours.
        day = _EPOCH_DAY + dt.timedelta(days=days)
        text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}T"
        if len(_day_cache) >= 1024:
            _day_cache.clear()
        _day_cache[days] = text
    return text


def _minute_text(minutes: int) -> str:
    """``YYYY-MM-DDTHH:MM`` (cached: a busy day has many events a minute)."""
    text = _minute_cache.get(minutes)
    if text is None:
        days, rest = divmod(minutes, 1440)
        hours, rest = divmod(rest, 60)
        text = f"{_day_prefix(days)}{hours:02d}:{rest:02d}"
        if len(_minute_cache) >= 4096:
            _minute_cache.clear()
        _minute_cache[minutes] = text
    return text


def second_text(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of seconds since the epoch (UTC)."""
    minutes, second = divmod(seconds, 60)
    return _minute_text(minutes) + _SECONDS[second]


def date_text(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, exactly three fraction digits) of milliseconds
    since the epoch, for MIN_DATETIME_MS <= ms < END_DATETIME_MS: the one date formatter
    of the hash, the JSONL lines and fastcodec."""
    seconds, millis = divmod(ms, 1000)
    return second_text(seconds) + MILLIS_TEXT[millis]


def datetime_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch (a naive datetime is UTC), fractions floored."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // _ONE_MS


def extended_json(value: Any) -> Any:
    """Relaxed Extended JSON v2 value of a rare BSON type, as plain JSON data."""
    return json.loads(json_util.dumps(value, json_options=RELAXED_JSON_OPTIONS))


def canonical_value(value: Any) -> Any:
    """Convert a BSON value to the JSON data the hash scheme defines."""
    t = type(value)
    if t is str or t is int or t is bool or value is None or t is float:
        return value
    if isinstance(value, Mapping):
        return {k: canonical_value(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [canonical_value(v) for v in value]
    if isinstance(value, dt.datetime):
        return date_text(datetime_ms(value))
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, int):  # Int64 and other int subclasses: both widths hash alike
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Decimal128):
        return str(value)
    if isinstance(value, bytes | Binary):  # Binary subclasses bytes; any subtype
        return base64.b64encode(bytes(value)).decode("ascii")
    # A DatetimeMS is a date outside Python's range (before year 1 or after 9999): the
    # SPEC's fallback, the Relaxed Extended JSON value {"$date": {"$numberLong": "..."}},
    # as for regex, timestamp and the other types.
    return extended_json(value)


def canonical_json(value: Any) -> bytes:
    """UTF-8 canonical JSON: sorted keys, no whitespace, non-ASCII as itself."""
    return json.dumps(
        canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def event_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed part of an event: everything but ``_id`` and ``hash``."""
    return {k: v for k, v in event.items() if k != "_id" and k != "hash"}


def event_hash(event: Mapping[str, Any]) -> str:
    """``sha256_hex(canonical_json(event without _id and hash))``."""
    return hashlib.sha256(canonical_json(event_body(event))).hexdigest()

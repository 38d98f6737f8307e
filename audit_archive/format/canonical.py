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
from bson.datetime_ms import DatetimeMS
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


def format_datetime(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC with exactly three fraction digits."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _extended(value: Any) -> Any:
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
        return format_datetime(value)
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
    if isinstance(value, DatetimeMS):
        # Outside Python's datetime range (before year 1 or after 9999): the SPEC's
        # fallback, the Relaxed Extended JSON value {"$date": {"$numberLong": "..."}}.
        return _extended(value)
    return _extended(value)


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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""The archive's hot path: an event's hash and its JSONL line, byte for byte what
canonical.py and jsonl.py produce, at a fraction of their cost.

canonical.py and jsonl.py are the definitions. They convert every value in Python and
then run ``json.dumps``, twice per event (hash, line): about 100 us per realistic event
on a small worker, more than reading it from MongoDB. Here orjson (Rust) walks the
document and writes the JSON, and our hooks take over exactly where orjson's own output
would differ from the definitions:

- doubles: orjson writes ``1e-05`` as ``0.00001`` and NaN as ``null``, so events are
  decoded with ``FAST_CODEC_OPTIONS``, whose type registry makes every double a
  :class:`Double` (a float subclass), which orjson always hands to the hook, and the hook
  writes Python's ``repr``;
- dates: decoded as ``DatetimeMS`` (cheaper than building a datetime) and written from
  the milliseconds, the date part cached per day;
- ObjectId, Int64 (int subclasses go to the hook too), bytes and Binary: as the
  definitions write them;
- anything else (Decimal128, Regex, Timestamp, Code, DBRef, MinKey, a non-finite double,
  a date outside 1970..9999, a dict subclass, non-string keys ...) makes the whole event
  go through the definitions instead, after decoding it exactly as
  ``EVENT_CODEC_OPTIONS`` does. Rare types cost what they cost; results never differ.

Only documents decoded with ``FAST_CODEC_OPTIONS`` may be passed here
(audit_archive_tests/test_fastcodec.py checks both paths agree on every BSON type).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import bson
import orjson
from bson import ObjectId
from bson.binary import Binary
from bson.codec_options import CodecOptions, DatetimeConversion, TypeDecoder, TypeRegistry
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from .canonical import EVENT_CODEC_OPTIONS, canonical_json, event_body
from .jsonl import relaxed_line

_EPOCH_DAY = dt.date(1970, 1, 1)
_DAY_MS = 86_400_000
_END_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: dates before it and after 1970 are fast

_CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_RELAXED = (
    orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_Fragment = orjson.Fragment
_float_repr = float.__repr__
_isfinite = math.isfinite


class Double(float):
    """A BSON double decoded by FAST_CODEC_OPTIONS: a float the encoders can tell apart."""

    __slots__ = ()


class _DoubleDecoder(TypeDecoder):
    bson_type = float
    transform_bson = Double  # a class attribute, not a method: called as Double(value)


FAST_CODEC_OPTIONS: CodecOptions = EVENT_CODEC_OPTIONS.with_options(
    datetime_conversion=DatetimeConversion.DATETIME_MS,
    type_registry=TypeRegistry([_DoubleDecoder()]),
)


class _Rare(Exception):
    """A value the fast path does not write itself: the event takes the reference path."""


_day_cache: dict[int, str] = {}


def _day_prefix(days: int) -> str:
    text = _day_cache.get(days)
    if text is None:
        day = _EPOCH_DAY + dt.timedelta(days=days)
        text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}T"
        if len(_day_cache) >= 4096:
            _day_cache.clear()
        _day_cache[days] = text
    return text


def _date_text(ms: int, always_fraction: bool) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` for 0 <= ms < _END_MS."""
    days, rest = divmod(ms, _DAY_MS)
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{_day_prefix(days)}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if millis or always_fraction:
        return f"{text}.{millis:03d}Z"
    return text + "Z"


def _canonical_default(value: Any) -> Any:
    t = type(value)
    if t is Double:
        if _isfinite(value):
            return _Fragment(_float_repr(value))
        raise _Rare
    if t is DatetimeMS:
        ms = int(value)
        if 0 <= ms < _END_MS:
            return _date_text(ms, True)
        raise _Rare
    if t is ObjectId:
        return str(value)
    if t is Int64:
        return int(value)
    if t is bytes or t is Binary:
        return base64.b64encode(value).decode("ascii")
    raise _Rare


def _relaxed_default(value: Any) -> Any:
    t = type(value)
    if t is Double:
        if _isfinite(value):
            return _Fragment(_float_repr(value))
        raise _Rare
    if t is DatetimeMS:
        ms = int(value)
        if 0 <= ms < _END_MS:
            return {"$date": _date_text(ms, False)}
        raise _Rare
    if t is ObjectId:
        return {"$oid": str(value)}
    if t is Int64:
        return int(value)
    if t is bytes:
        return {"$binary": {"base64": base64.b64encode(value).decode(), "subType": "00"}}
    if t is Binary:
        return {
            "$binary": {
                "base64": base64.b64encode(value).decode(),
                "subType": f"{value.subtype:02x}",
            }
        }
    raise _Rare


def as_event_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as EVENT_CODEC_OPTIONS decodes it (for the reference functions)."""
    return bson.decode(bson.encode(document), EVENT_CODEC_OPTIONS)


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """``canonical_json(event_body(document))`` for a FAST_CODEC_OPTIONS document."""
    body = dict(document)
    body.pop("_id", None)
    body.pop("hash", None)
    try:
        return orjson.dumps(body, default=_canonical_default, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return canonical_json(event_body(as_event_document(document)))


def event_hash(document: Mapping[str, Any]) -> str:
    """``canonical.event_hash`` for a FAST_CODEC_OPTIONS document."""
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def line(document: Mapping[str, Any]) -> bytes:
    """``jsonl.relaxed_line(document)`` as UTF-8, for a FAST_CODEC_OPTIONS document."""
    try:
        return orjson.dumps(document, default=_relaxed_default, option=_RELAXED)
    except orjson.JSONEncodeError:
        return relaxed_line(as_event_document(document)).encode("utf-8")

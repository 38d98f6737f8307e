"""The archive's hot path: an event's hash and its JSONL line, byte for byte what
canonical.py and jsonl.py produce, at a fraction of their cost.

canonical.py and jsonl.py are the definitions. They convert every value in Python and
then run ``json.dumps``, twice per event (hash, line): about 100 us per realistic event
on a small worker, more than reading it from MongoDB. Here orjson (Rust) walks the
document and writes the JSON, and hooks take over where orjson's output would differ:

- dates are decoded as ``DatetimeMS`` (``FAST_CODEC_OPTIONS``: much cheaper than building
  timezone-aware datetimes) and written from the milliseconds, the day part cached;
- ObjectId, Int64 (subclasses of int reach the hook), bytes and Binary are written as the
  definitions write them;
- doubles are written by orjson, which agrees with Python's ``repr`` except for
  magnitudes below 1e-4 (``0.00001`` for ``1e-05``, ``1e-7`` for ``1e-07``) and
  non-finite values (``null``). Every such output contains ``<digit>e-``, ``0.0000`` or
  ``null`` (checked on millions of doubles in test_fastcodec.py), so an output with one
  of those is thrown away and the definitions write that event (a string that merely
  contains one costs the slow path, never a wrong byte);
- anything else (Decimal128, Regex, Timestamp, Code, DBRef, MinKey, a date outside
  1970..9999, a dict subclass ...) also sends the event to the definitions, after
  decoding it exactly as ``EVENT_CODEC_OPTIONS`` does.

Only documents decoded with ``FAST_CODEC_OPTIONS`` may be passed here; the tests check
both paths agree on every BSON type and that realistic events take the fast one.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import itertools
import math
from collections.abc import Mapping
from typing import Any

import bson
import orjson
from bson import ObjectId
from bson.binary import Binary
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from .canonical import EVENT_CODEC_OPTIONS, canonical_json, event_body
from .jsonl import relaxed_line

FAST_CODEC_OPTIONS: CodecOptions = EVENT_CODEC_OPTIONS.with_options(
    datetime_conversion=DatetimeConversion.DATETIME_MS
)

_EPOCH_DAY = dt.date(1970, 1, 1)
_DAY_MS = 86_400_000
_END_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z; dates in [1970, 10000) are fast
_CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_RELAXED = (
    orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def maybe_other_double(written: bytes) -> bool:
    """Whether orjson may have written a double unlike Python's repr (see above):
    ``null``, ``0.0000`` or a digit before ``e-``. Substring searches, not a regular
    expression: a regex with a leading alternation costs more than the whole encoding."""
    if b"null" in written or b"0.0000" in written:
        return True
    at = written.find(b"e-")
    while at > 0:
        if 48 <= written[at - 1] <= 57:  # an ASCII digit
            return True
        at = written.find(b"e-", at + 2)
    return False


class _Rare(Exception):
    """A value the fast path does not write itself: the event takes the reference path."""


_day_cache: dict[int, str] = {}
_minute_cache: dict[int, str] = {}


def _day_prefix(days: int) -> str:
    text = _day_cache.get(days)
    if text is None:
        day = _EPOCH_DAY + dt.timedelta(days=days)
        text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}T"
        if len(_day_cache) >= 1024:
            _day_cache.clear()
        _day_cache[days] = text
    return text


_SECONDS = [f":{second:02d}" for second in range(60)]
_MILLIS = [f".{millis:03d}Z" for millis in range(1000)]  # formatting one costs more
_MILLIS_RELAXED = ["Z", *_MILLIS[1:]]  # Relaxed Extended JSON writes no ".000"


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


def _second_text(seconds: int) -> str:
    minutes, second = divmod(seconds, 60)
    return _minute_text(minutes) + _SECONDS[second]


def _date_text(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for 0 <= ms < _END_MS."""
    seconds, millis = divmod(ms, 1000)
    return _second_text(seconds) + _MILLIS[millis]


def _relaxed_date(ms: int) -> dict[str, str]:
    seconds, millis = divmod(ms, 1000)
    return {"$date": _second_text(seconds) + _MILLIS_RELAXED[millis]}


def _canonical_default(value: Any) -> Any:
    t = type(value)
    if t is DatetimeMS:
        ms = int(value)
        if 0 <= ms < _END_MS:
            return _date_text(ms)
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
    if t is DatetimeMS:
        ms = int(value)
        if 0 <= ms < _END_MS:
            return _relaxed_date(ms)
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


def _line_view(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document with its top-level ``_id`` and ``at`` already written as the line
    writes them (every event has both; orjson's ``default`` hook, one Python call per
    value, costs more than the rest of the line). Other values go through the hook."""
    oid, at = document.get("_id"), document.get("at")
    if type(oid) is not ObjectId and type(at) is not DatetimeMS:
        return document
    view = dict(document)
    if type(oid) is ObjectId:
        view["_id"] = {"$oid": str(oid)}
    if type(at) is DatetimeMS and 0 <= (ms := int(at)) < _END_MS:
        view["at"] = _relaxed_date(ms)
    return view


def _body_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed body (without ``_id`` and ``hash``), its ``at`` already written."""
    body = dict(document)
    body.pop("_id", None)
    body.pop("hash", None)
    at = body.get("at")
    if type(at) is DatetimeMS and 0 <= (ms := int(at)) < _END_MS:
        body["at"] = _date_text(ms)
    return body


def doubles_written_alike(value: Any) -> bool:
    """Whether orjson writes every double in ``value`` as Python's repr does: all but the
    non-finite ones and magnitudes below 1e-4 (checked across the range in
    test_fastcodec.py). Walked only for a line that carries a marker (a ``null`` is
    usually just a None)."""
    t = type(value)
    if t is float:
        return math.isfinite(value) and (value == 0 or abs(value) >= 1e-4)
    if t is dict:
        return all(doubles_written_alike(v) for v in value.values())
    if t is list:
        return all(doubles_written_alike(v) for v in value)
    return True


def as_event_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as EVENT_CODEC_OPTIONS decodes it (for the reference functions)."""
    return bson.decode(bson.encode(document), EVENT_CODEC_OPTIONS)


def _reference_canonical(document: Mapping[str, Any]) -> bytes:
    return canonical_json(event_body(as_event_document(document)))


def _fast_canonical(document: Mapping[str, Any]) -> bytes | None:
    try:
        return orjson.dumps(_body_view(document), default=_canonical_default, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return None


def _written_line(document: Mapping[str, Any]) -> bytes | None:
    """orjson's line, unchecked (see maybe_other_double), or None for a rare value."""
    try:
        return orjson.dumps(_line_view(document), default=_relaxed_default, option=_RELAXED)
    except orjson.JSONEncodeError:
        return None


def _fast_line(document: Mapping[str, Any]) -> bytes | None:
    out = _written_line(document)
    if out is None or (maybe_other_double(out) and not doubles_written_alike(document)):
        return None
    return out


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """``canonical_json(event_body(document))`` for a FAST_CODEC_OPTIONS document."""
    out = _fast_canonical(document)
    if out is None or maybe_other_double(out):
        return _reference_canonical(document)
    return out


def event_hash(document: Mapping[str, Any]) -> str:
    """``canonical.event_hash`` for a FAST_CODEC_OPTIONS document."""
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def line(document: Mapping[str, Any]) -> bytes:
    """``jsonl.relaxed_line(document)`` as UTF-8, for a FAST_CODEC_OPTIONS document."""
    out = _fast_line(document)
    if out is None:
        return relaxed_line(as_event_document(document)).encode("utf-8")
    return out


def _marked(written: list[bytes]) -> set[int]:
    """Positions of the lines that carry a maybe_other_double marker. Searched in the
    batch joined, then mapped to lines: one search of a long buffer costs a fraction of
    one per line (lines end with a newline, so no marker spans two)."""
    joined = b"".join(written)
    if not maybe_other_double(joined):
        return set()
    ends = list(itertools.accumulate(map(len, written)))
    found: list[int] = []
    for marker in (b"null", b"0.0000"):
        at = joined.find(marker)
        while at >= 0:
            found.append(at)
            at = joined.find(marker, at + 1)
    at = joined.find(b"e-")
    while at > 0:
        if 48 <= joined[at - 1] <= 57:  # an ASCII digit
            found.append(at)
        at = joined.find(b"e-", at + 2)
    return {bisect.bisect_right(ends, at) for at in found}


def lines(documents: list[Mapping[str, Any]]) -> tuple[list[bytes], set[int]]:
    """Each document's line, and the positions of those that took the reference path
    (pass them to :func:`event_hashes`: the others' doubles are known to be safe). A
    line with a marker keeps the fast path when its doubles are all safe (the marker
    was a None, or text)."""
    out = [_written_line(document) for document in documents]
    slow = {i for i, written in enumerate(out) if written is None}
    if not slow:  # the usual case; a None position is slow already
        marked = _marked(out)  # type: ignore[arg-type]
    else:
        marked = {i for i, written in enumerate(out) if written and maybe_other_double(written)}
    slow |= {i for i in marked if not doubles_written_alike(documents[i])}
    for i in slow:
        out[i] = relaxed_line(as_event_document(documents[i])).encode("utf-8")
    return out, slow  # type: ignore[return-value]  # every None was replaced


def event_hashes(documents: list[Mapping[str, Any]], slow: set[int]) -> list[str]:
    """Each document's hash; ``slow`` from :func:`lines`. A document whose line carries
    no marker has no double orjson writes unlike repr, in its body either (the body's
    values are the line's, written by the same orjson), so its canonical bytes need no
    second check; the dates come from the cache the lines filled."""
    sha256 = hashlib.sha256
    out = []
    for i, document in enumerate(documents):
        canonical = None if i in slow else _fast_canonical(document)
        if canonical is None:
            canonical = _reference_canonical(document)
        out.append(sha256(canonical).hexdigest())
    return out

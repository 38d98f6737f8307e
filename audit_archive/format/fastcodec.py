"""The archive's hot path: an event's hash and its JSONL line, byte for byte what
canonical.py and jsonl.py produce, at a fraction of their cost.

canonical.py and jsonl.py are the definitions. They convert every value in Python and
then run ``json.dumps``, twice per event (hash, line): about 100 us per realistic event
on a small worker, more than reading it from MongoDB. Here orjson (Rust) walks the
document and writes the JSON, and hooks take over where orjson's output would differ:

- the top-level ``_id`` (ObjectId) and ``at`` (a date) are written into a copy of the
  event before orjson runs: every event has both, and orjson's ``default`` hook (one
  Python call per value) cost more than the rest of the line;
- dates are decoded as ``DatetimeMS`` (``FAST_CODEC_OPTIONS``: much cheaper than building
  timezone-aware datetimes) and written from the milliseconds, from cached minutes and
  tables of seconds and milliseconds;
- nested ObjectId, Int64 (subclasses of int reach the hook), bytes and Binary are
  written by the hooks, as the definitions write them;
- doubles are written by orjson, which agrees with Python's ``repr`` except for
  magnitudes below 1e-4 (``0.00001`` for ``1e-05``, ``1e-7`` for ``1e-07``) and
  non-finite values (``null``). Every such output contains ``<digit>e-``, ``0.0000`` or
  ``null`` (checked on millions of doubles in test_fastcodec.py); a line with one of
  those keeps the fast path only if every double of the event is safe
  (doubles_written_alike: a ``null`` is usually a None), else the definitions write it;
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
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import bson
import orjson
from bson import ObjectId
from bson.binary import Binary
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, canonical_json, event_body
from audit_archive.format.jsonl import bson_line, reads_back, relaxed_line

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


# What a key the encoder itself writes looks like in a line: ``{"$`` or ``,"$``. Inside a
# JSON string a quote is escaped, so these bytes appear only where a key starts with "$"
# or where a string value in an array does: a line holds at least as many of them as
# keys starting with "$".
_DOLLAR_AFTER_BRACE = b'{"$'
_DOLLAR_AFTER_COMMA = b',"$'


def _dollars(written: bytes) -> int:
    return written.count(_DOLLAR_AFTER_BRACE) + written.count(_DOLLAR_AFTER_COMMA)


def _unproven(lines: list[bytes], wrote: list[int], slow: list[int]) -> list[int]:
    """The lines that may not read back as their document (SPEC 3), to be checked.

    A fast line whose ``{"$``/``,"$`` count equals the number of wrappers the encoder
    wrote into it has no other key starting with "$" (each such key adds one), so a
    parser reads it back as the document by construction. Counted over the batch joined
    first (each line counts at least its own wrappers, so equal sums mean every line is
    equal), then line by line when the sums differ. Lines of the definitions' path are
    always checked."""
    fast = [line for i, line in enumerate(lines) if wrote[i] >= 0]
    if _dollars(b"".join(fast)) == sum(w for w in wrote if w > 0):
        return slow
    suspect = [i for i, line in enumerate(lines) if wrote[i] >= 0 and _dollars(line) != wrote[i]]
    return sorted(slow + suspect)


def encode_batch(
    documents: list[Mapping[str, Any]],
) -> tuple[list[bytes], list[bytes], list[int]]:
    """Each document's JSONL line and the canonical JSON its hash is taken of, byte for
    byte ``relaxed_line(d)`` (UTF-8) and ``canonical_json(event_body(d))``, for
    FAST_CODEC_OPTIONS documents (hashing is left to the caller, timed apart), and the
    positions of the lines that must be read back before they are trusted (_unproven).

    One pass builds both views of each event (the line's, and the hashed body with its
    keys sorted by orjson), writing the top-level ``_id`` and ``at`` once. An event
    takes the definitions' path when orjson cannot write a value of it, or when its line
    carries a double marker (maybe_other_double) and its doubles are not all safe."""
    lines: list[bytes] = []
    canonicals: list[bytes | None] = []
    slow: list[int] = []
    wrote: list[int] = []  # wrappers ("$" keys) the encoder wrote per line; -1: slow path
    hooked = 0

    def relaxed_default(value: Any) -> Any:
        nonlocal hooked
        out = _relaxed_default(value)
        if type(out) is dict:
            hooked += 1  # every wrapper _relaxed_default returns has one "$" key
        return out

    for i, document in enumerate(documents):
        body = dict(document)
        oid = body.pop("_id", None)
        body.pop("hash", None)
        view = dict(document)
        hooked = 0
        if type(oid) is ObjectId:
            view["_id"] = {"$oid": str(oid)}
            hooked += 1
        at = body.get("at")
        if type(at) is DatetimeMS and 0 <= (ms := int(at)) < _END_MS:
            seconds, millis = divmod(ms, 1000)
            text = _second_text(seconds)
            body["at"] = text + _MILLIS[millis]
            view["at"] = {"$date": text + _MILLIS_RELAXED[millis]}
            hooked += 1
        try:
            lines.append(orjson.dumps(view, default=relaxed_default, option=_RELAXED))
            wrote.append(hooked)
            canonicals.append(orjson.dumps(body, default=_canonical_default, option=_CANONICAL))
        except orjson.JSONEncodeError:
            if len(lines) == i:
                lines.append(b"")
                wrote.append(-1)
            wrote[i] = -1
            canonicals.append(None)
            slow.append(i)
    if not slow:
        marked = _marked(lines)
    else:
        marked = {i for i, line in enumerate(lines) if line and maybe_other_double(line)}
    for i in marked:
        if not doubles_written_alike(documents[i]):
            slow.append(i)
            wrote[i] = -1
    for i in slow:
        reference = as_event_document(documents[i])
        lines[i] = relaxed_line(reference).encode("utf-8")
        canonicals[i] = canonical_json(event_body(reference))
    return lines, canonicals, _unproven(lines, wrote, sorted(slow))  # type: ignore[return-value]


def make_readable(
    lines: list[bytes], unproven: list[int], rehashes: list[str], raw_of: Callable[[int], bytes]
) -> int:
    """SPEC 3: each line encode_batch could not prove readable is read back and re-hashed;
    one that does not give back its document becomes the ``{"bson": ...}`` line of the
    document's BSON bytes as stored (``raw_of(i)``). Returns how many did."""
    replaced = 0
    for i in unproven:
        raw = raw_of(i)
        if not reads_back(lines[i], raw, rehashes[i]):
            lines[i] = bson_line(raw)
            replaced += 1
    return replaced

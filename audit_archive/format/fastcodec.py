"""The archive's hot path: an event's hash and its JSONL line, byte for byte what
canonical.py and pymongo's json_util produce, at a fraction of their cost, for every
BSON type.

canonical.py (the hash) and pymongo's ``json_util`` (the line, jsonl.relaxed_line) are
the definitions. They convert every value in Python and then run ``json.dumps``, twice
per event (hash, line): about 100 us per realistic event on a small worker, more than
reading it from MongoDB. Here orjson (Rust) walks the
document and writes the JSON, and hooks take over where orjson's output would differ:

- the top-level ``_id`` (ObjectId) and ``at`` (a date) are written into a copy of the
  event before orjson runs: every event has both, and orjson's ``default`` hook (one
  Python call per value) cost more than the rest of the line;
- dates are decoded as ``DatetimeMS`` (``FAST_CODEC_OPTIONS``: much cheaper than building
  timezone-aware datetimes) and written from the milliseconds by canonical.date_text;
- doubles: orjson writes a double as Python's ``repr`` does except for magnitudes below
  1e-4 (``0.00001`` for ``1e-05``) and non-finite values (``null``); checked on hundreds
  of thousands of doubles in test_fastcodec.py. ``FAST_CODEC_OPTIONS`` decodes exactly
  those (rare) doubles as ``_Double``, which the hooks write as the definitions do;
- every other BSON type (ObjectId, Int64, bytes, Binary, Decimal128, Regex, Timestamp,
  Code, DBRef, MinKey, MaxKey, dates outside 1970..9999) is written by the hooks, as the
  definitions write it. There is no slow path.

Each line is also counted for SPEC 3's read-back (``unproven_lines``), and each decoded
document encoded again and compared with its stored bytes (``decode_losses``): SPEC 3
judges a line against the stored bytes, and decoding loses some of them. Only documents
decoded with ``FAST_CODEC_OPTIONS`` may be passed here; the tests check both paths agree
on every BSON type.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import bson
import orjson
from bson import ObjectId
from bson.binary import Binary
from bson.code import Code
from bson.codec_options import (
    CodecOptions,
    DatetimeConversion,
    TypeDecoder,
    TypeEncoder,
    TypeRegistry,
)
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.regex import Regex
from bson.timestamp import Timestamp

from audit_archive.format.canonical import (
    END_DATETIME_MS,
    EVENT_CODEC_OPTIONS,
    MILLIS_TEXT,
    MIN_DATETIME_MS,
    date_text,
    second_text,
)
from audit_archive.format.decimaltext import (
    COEFFICIENT_HIGH,
    LARGE_HIGH,
    SPECIAL,
    decimal_text,
    rare_decimal,
)
from audit_archive.format.jsonl import bson_line, reads_back


class _Double:
    """A double orjson would write unlike Python's repr: non-finite, or a magnitude
    below 1e-4 (but not zero)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def written_as_repr(value: float) -> bool:
    """Whether orjson writes this double as Python's repr does (test_fastcodec.py)."""
    return math.isfinite(value) and (value == 0 or abs(value) >= 1e-4)


_INFINITY = math.inf


class _DoubleDecoder(TypeDecoder):
    bson_type = float

    def transform_bson(self, value: float) -> Any:
        # written_as_repr inlined (this runs for every double decoded): NaN fails both
        # tests, an infinity the first.
        return value if 1e-4 <= abs(value) < _INFINITY or value == 0 else _Double(value)


class _DoubleEncoder(TypeEncoder):
    python_type = _Double

    def transform_python(self, value: _Double) -> float:
        return value.value


FAST_CODEC_OPTIONS: CodecOptions = EVENT_CODEC_OPTIONS.with_options(
    datetime_conversion=DatetimeConversion.DATETIME_MS,
    type_registry=TypeRegistry([_DoubleDecoder()]),
)
# FAST_CODEC_OPTIONS documents encoded back to BSON (decode_losses).
_REENCODE_OPTIONS: CodecOptions = FAST_CODEC_OPTIONS.with_options(
    type_registry=TypeRegistry([_DoubleDecoder(), _DoubleEncoder()])
)

_CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_RELAXED = (
    orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_MILLIS_RELAXED = ["Z", *MILLIS_TEXT[1:]]  # Relaxed Extended JSON writes no ".000"
_NON_FINITE = {"NaN": b"NaN", "Infinity": b"Infinity", "-Infinity": b"-Infinity"}


_PACK_DOUBLE = struct.Struct("<d").pack
_PARSED_NAN = _PACK_DOUBLE(float("nan"))  # the one NaN a parser makes of "NaN"


def _non_finite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _far_date(ms: int) -> dict[str, Any]:
    return {"$date": {"$numberLong": str(ms)}}


_regex_cache: dict[tuple[Any, int], dict[str, Any]] = {}
_REGEX_FLAGS = ((2, "i"), (4, "l"), (8, "m"), (16, "s"), (32, "u"), (64, "x"))  # re.I ...


def _regex(value: Regex) -> dict[str, Any]:
    """``{"$regularExpression": ...}`` as pymongo writes it (flags in its order)."""
    key = (value.pattern, value.flags)
    out = _regex_cache.get(key)
    if out is None:
        options = "".join(letter for bit, letter in _REGEX_FLAGS if value.flags & bit)
        pattern = value.pattern
        if not isinstance(pattern, str):
            pattern = pattern.decode("utf-8")
        out = {"$regularExpression": {"pattern": pattern, "options": options}}
        if len(_regex_cache) >= 1024:
            _regex_cache.clear()
        _regex_cache[key] = out
    return out


def _with_members(value: Code | DBRef) -> dict[str, Any]:
    """A Code with scope or a DBRef as the document pymongo writes for it; the members
    (payload of any type) are written by the hooks. A DBRef's is ``as_doc().to_dict()``
    built directly (those build a SON and copy it: most of a DBRef's cost)."""
    if type(value) is Code:
        return {"$code": str(value), "$scope": value.scope}
    members = {"$ref": value._DBRef__collection, "$id": value._DBRef__id}  # type: ignore[union-attr]
    database = value._DBRef__database  # type: ignore[union-attr]
    if database is not None:
        members["$db"] = database
    members.update(value._DBRef__kwargs)  # type: ignore[union-attr]
    return members


def _binary_wrapper(value: bytes) -> dict[str, Any]:
    subtype = value.subtype if type(value) is Binary else 0  # type: ignore[attr-defined]
    return {"$binary": {"base64": base64.b64encode(value).decode(), "subType": f"{subtype:02x}"}}


def _timestamp_wrapper(value: Timestamp) -> dict[str, Any]:
    return {"$timestamp": {"t": value.time, "i": value.inc}}


_MIN_KEY, _MAX_KEY = {"$minKey": 1}, {"$maxKey": 1}  # only read by orjson: shared
_NON_FINITE_WRAPPER = {name: {"$numberDouble": name} for name in _NON_FINITE}
# A Regex, Timestamp, MinKey or MaxKey as its one-key Relaxed Extended JSON wrapper: the
# same in a line and in the hash (SPEC 1 hashes these types as their Relaxed Extended
# JSON value). Found by the value's type, one look-up: the hooks run ~20 times an event
# on payloads rich in such types, in each view.
_ONE_WRAPPER: dict[type, Callable[[Any], dict[str, Any]]] = {
    Regex: _regex,
    Timestamp: _timestamp_wrapper,
    MinKey: lambda _: _MIN_KEY,
    MaxKey: lambda _: _MAX_KEY,
}
# What a line writes for the types whose wrapper is one key starting with "$", always.
_ONE_DOLLAR: dict[type, Callable[[Any], dict[str, Any]]] = {
    ObjectId: lambda value: {"$oid": value._ObjectId__id.hex()},
    bytes: _binary_wrapper,
    Binary: _binary_wrapper,
    **_ONE_WRAPPER,
}


_DBREF_OWN = frozenset(("$ref", "$id", "$db"))  # the keys the encoder writes for a DBRef


class _LineHooks:
    """orjson's ``default`` for a JSONL line, counting the keys starting with "$" it
    writes (``dollars``); ``sure`` turns False when it wrote something the count cannot
    vouch for (bits the text loses: a NaN's sign or payload, in a double or a Decimal128,
    an sNaN, a non-canonical Decimal128; the canonical NaN and infinities read back as
    stored). A Code with scope and a
    DBRef are counted like any wrapper: their own keys (``$code``/``$scope``;
    ``$ref``/``$id``/``$db``), with their members hooked and counted like the payload's,
    so a "$" key of the members' own (a DBRef's extra field, a scope's key) makes the
    line's count differ and the line is read back. A DBRef's stored field order, which
    decoding does not keep, is checked against the stored bytes (decode_losses)."""

    __slots__ = ("dollars", "sure")

    def __init__(self) -> None:
        self.dollars = 0
        self.sure = True

    def relaxed(self, value: Any) -> Any:
        t = type(value)
        if t is Int64:
            return int(value)
        wrap = _ONE_DOLLAR.get(t)
        if wrap is not None:
            self.dollars += 1
            return wrap(value)
        if t is DatetimeMS:
            ms = value._value  # type: ignore[attr-defined]
            if 0 <= ms < END_DATETIME_MS:
                self.dollars += 1
                seconds, millis = divmod(ms, 1000)
                return {"$date": second_text(seconds) + _MILLIS_RELAXED[millis]}
            self.dollars += 2
            return _far_date(ms)
        if t is _Double:
            v = value.value
            if math.isfinite(v):
                return orjson.Fragment(repr(v))
            self.dollars += 1
            if v != v and _PACK_DOUBLE(v) != _PARSED_NAN:
                self.sure = False  # a NaN's sign or payload: "NaN" reads back as another
            return _NON_FINITE_WRAPPER[_non_finite_name(v)]
        if t is Decimal128:
            self.dollars += 1
            high = value._Decimal128__high  # type: ignore[attr-defined]
            if high & SPECIAL != SPECIAL and high & COEFFICIENT_HIGH < LARGE_HIGH:
                return {"$numberDecimal": decimal_text(value)}  # finite and canonical
            text, exact = rare_decimal(value, high, value._Decimal128__low)  # type: ignore[attr-defined]
            if not exact:
                self.sure = False  # a NaN's sign or payload, sNaN, non-canonical bits
            return {"$numberDecimal": text}
        if t is Code:
            if value.scope is None:
                self.dollars += 1
                return {"$code": str(value)}
            self.dollars += 2  # "$code" and "$scope"
            return _with_members(value)
        if t is DBRef:
            members = _with_members(value)
            self.dollars += sum(key in _DBREF_OWN for key in members)
            return members
        raise TypeError(f"no JSON for BSON value of type {t.__name__}")


def _canonical_date(value: DatetimeMS) -> Any:
    ms = value.__int__()
    return date_text(ms) if MIN_DATETIME_MS <= ms < END_DATETIME_MS else _far_date(ms)


_NON_FINITE_FRAGMENT = {name: orjson.Fragment(text) for name, text in _NON_FINITE.items()}


def _canonical_double(value: _Double) -> Any:
    v = value.value
    if math.isfinite(v):
        return orjson.Fragment(repr(v))
    return _NON_FINITE_FRAGMENT[_non_finite_name(v)]


def _canonical_members(value: Code | DBRef) -> Any:
    """A Code with scope or a DBRef, hashed as its Relaxed Extended JSON value, members
    included, keys sorted; a Code without scope as its one-key wrapper."""
    if type(value) is Code and value.scope is None:
        return {"$code": str(value)}
    relaxed = orjson.dumps(_with_members(value), default=_LineHooks().relaxed, option=_CANONICAL)
    return orjson.Fragment(relaxed)


# The hashed body's values by type (SPEC 1), one look-up per value.
_CANONICAL_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    DatetimeMS: _canonical_date,
    ObjectId: lambda value: value.binary.hex(),
    Int64: int,
    bytes: lambda value: base64.b64encode(value).decode("ascii"),
    Binary: lambda value: base64.b64encode(value).decode("ascii"),
    _Double: _canonical_double,
    Decimal128: decimal_text,
    Code: _canonical_members,
    DBRef: _canonical_members,
    **_ONE_WRAPPER,
}


def _canonical_default(value: Any) -> Any:
    convert = _CANONICAL_BY_TYPE.get(type(value))
    if convert is None:
        raise TypeError(f"no JSON for BSON value of type {type(value).__name__}")
    return convert(value)


def _views(
    documents: list[Mapping[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any], int]]:
    """Each document to write as a line and its hashed body, with the top-level ``_id``
    and ``at`` already written (and how many "$" keys that wrote). A batch at a time, the
    values read from the ObjectId's and DatetimeMS's slots (``str`` and ``int`` would
    call their Python methods): this runs per event. One at a time, so each is freed
    before the next is made (memory that is reused stays in the cache)."""
    second, end = second_text, END_DATETIME_MS
    millis_text, millis_relaxed = MILLIS_TEXT, _MILLIS_RELAXED
    for document in documents:
        view = dict(document)
        body = view.copy()
        oid = body.pop("_id", None)
        body.pop("hash", None)
        dollars = 0
        if type(oid) is ObjectId:
            view["_id"] = {"$oid": oid._ObjectId__id.hex()}  # type: ignore[attr-defined]
            dollars = 1
        at = body.get("at")
        if type(at) is DatetimeMS:
            ms = at._value  # type: ignore[attr-defined]
            if 0 <= ms < end:
                seconds, millis = divmod(ms, 1000)
                text = second(seconds)
                body["at"] = text + millis_text[millis]
                view["at"] = {"$date": text + millis_relaxed[millis]}
                dollars += 1
        yield view, body, dollars


# What a key the encoder itself writes looks like in a line: ``{"$`` or ``,"$``. Inside a
# JSON string a quote is escaped, so these bytes appear only where a key starts with "$"
# or where a string value in an array does: a line holds at least as many of them as
# keys starting with "$".
_DOLLAR_AFTER_BRACE = b'{"$'
_DOLLAR_AFTER_COMMA = b',"$'


def _dollars(written: bytes) -> int:
    return written.count(_DOLLAR_AFTER_BRACE) + written.count(_DOLLAR_AFTER_COMMA)


def unproven_lines(joined: bytes, wrote: list[int]) -> list[int]:
    """The lines that may not read back as their document (SPEC 3), to be checked.

    A line whose ``{"$``/``,"$`` count equals the number of wrappers the encoder wrote
    into it has no other key starting with "$" (each such key adds one), so a parser
    reads it back as the document by construction. Counted over the batch joined first
    (each line counts at least its own wrappers, so equal sums mean every line is
    equal), then line by line when the sums differ. Lines the hooks could not count (-1)
    are always checked. Every ``{"$``/``,"$`` holds a "$" of its own, so a batch with
    no more "$" than wrappers (most: one byte count, a quarter of the two above) needs
    no more counting."""
    if -1 not in wrote:
        wrappers = sum(wrote)
        if joined.count(b"$") == wrappers or _dollars(joined) == wrappers:
            return []
    lines = lines_of(joined)
    return [i for i, line in enumerate(lines) if wrote[i] < 0 or _dollars(line) != wrote[i]]


class Batch(NamedTuple):
    """A batch's JSONL lines joined (each with its newline), the sha256 (hex) of the
    canonical JSON of each event's hashed body, and the positions of the lines to read
    back (SPEC 3)."""

    joined: bytes
    rehashes: list[str]
    unproven: list[int]

    @property
    def lines(self) -> list[bytes]:
        """The lines one by one, each with its newline (a line holds no other: JSON
        escapes a newline in a string)."""
        return lines_of(self.joined)


def lines_of(joined: bytes) -> list[bytes]:
    """Lines joined, one by one, each with its newline."""
    return [line + b"\n" for line in joined.split(b"\n")[:-1]]


def encode_batch(documents: list[Mapping[str, Any]]) -> Batch:
    """Each document's JSONL line and the sha256 of the canonical JSON its hash is taken
    of: byte for byte ``relaxed_line(d)`` (UTF-8) and ``canonical_json(event_body(d))``,
    for FAST_CODEC_OPTIONS documents; and the positions of the lines that must be read
    back before they are trusted (unproven_lines).

    One pass builds both views of each event (the line's, and the hashed body with its
    keys sorted by orjson). Neither is kept: each line is appended to the batch's bytes
    and each body's JSON hashed at once, so the memory they take is reused by the next
    event's (keeping 5,000 of each doubled what writing them costs). The hooks know
    every type BSON decodes to; orjson raises JSONEncodeError for anything else (the
    run fails, deleting nothing)."""
    hooks = _LineHooks()
    relaxed, dumps, canonical_default = hooks.relaxed, orjson.dumps, _canonical_default
    sha256 = hashlib.sha256
    joined = bytearray()
    rehashes: list[str] = []
    wrote: list[int] = []  # "$" keys the encoder wrote per line; -1: not counted
    rehash, count = rehashes.append, wrote.append
    for view, body, hooks.dollars in _views(documents):  # per event: the names are locals
        hooks.sure = True
        joined += dumps(view, default=relaxed, option=_RELAXED)
        rehash(sha256(dumps(body, default=canonical_default, option=_CANONICAL)).hexdigest())
        count(hooks.dollars if hooks.sure else -1)
    written = bytes(joined)
    return Batch(written, rehashes, unproven_lines(written, wrote))


def decode_losses(
    documents: list[Mapping[str, Any]], stored: bytes | None, raw_of: Callable[[int], bytes]
) -> list[int]:
    """SPEC 3 judges a line against the stored bytes, and decoding already loses some of
    them: duplicate field names (the last one kept), symbol and undefined (read as str
    and None), a DBPointer (read as a DBRef), regex flags out of order or unknown, a
    DBRef's field order. So each decoded document is encoded again (C, about a third of
    the decode's cost) and compared with its stored bytes: once for the whole batch
    when ``stored`` is the batch's bytes (nothing left out), else one by one
    (``raw_of(i)``). Returns the positions whose bytes differ, for make_readable to
    check. What decoding keeps but a line loses (a NaN's sign or payload, a Decimal128
    the text does not give back bit for bit) the line hooks mark instead."""
    encode, options = bson.encode, _REENCODE_OPTIONS
    again: list[bytes | None] = []
    for document in documents:
        try:
            again.append(encode(document, codec_options=options))
        except Exception:  # nothing decoded should fail; if it does, check that line
            again.append(None)
    if stored is not None and None not in again and b"".join(again) == stored:  # type: ignore[arg-type]
        return []
    return [i for i, raw in enumerate(again) if raw != raw_of(i)]


def lines_to_check(
    batch: Batch,
    documents: list[Mapping[str, Any]],
    stored: bytes | None,
    raw_of: Callable[[int], bytes],
) -> list[int]:
    """make_readable's positions: the lines the count could not prove, and those whose
    document decoding lost something (decode_losses)."""
    lost = decode_losses(documents, stored, raw_of)
    return sorted(set(batch.unproven).union(lost)) if lost else batch.unproven


def make_readable(
    joined: bytes, unproven: list[int], rehashes: list[str], raw_of: Callable[[int], bytes]
) -> tuple[bytes, int]:
    """SPEC 3: each line encode_batch could not prove readable is read back and re-hashed;
    one that does not give back its document becomes the ``{"bson": ...}`` line of the
    document's BSON bytes as stored (``raw_of(i)``). Returns the lines joined again, and
    how many were replaced."""
    if not unproven:
        return joined, 0
    lines = lines_of(joined)
    replaced = 0
    for i in unproven:
        raw = raw_of(i)
        if not reads_back(lines[i], raw, rehashes[i]):
            lines[i] = bson_line(raw)
            replaced += 1
    return (b"".join(lines) if replaced else joined), replaced

"""Streaming Relaxed Extended JSON lines into a deterministic gzip file.

Lines are what ``mongoexport`` writes and ``mongoimport`` / ``json_util.loads`` read:
what pymongo's ``json_util.dumps`` writes with compact separators (relaxed_line, the
reference). The archive writes the same bytes with fastcodec, which the tests hold to
that reference for every BSON type. gzip: header mtime 0 and no file name, so the same
events always give the same bytes, and sha256 of the compressed bytes is computed as
they are written: the file is never read twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import bson
from bson import json_util
from bson.errors import BSONError
from isal import isal_zlib

from audit_archive.format import bsonpeek
from audit_archive.format.canonical import (
    EVENT_CODEC_OPTIONS,
    RELAXED_JSON_OPTIONS,
    event_hash,
    extended_json,
)

# ISA-L (python-isal) level 2: standard gzip, ~10x less CPU than zlib level 6 for ~8%
# larger objects (benchmarks/); deterministic for one ISA-L build and CPU family.
GZIP_LEVEL = 2
_FLUSH_BYTES = 1 << 20

# The one way a line is written slowly: pymongo's json_util, the independent reference
# that fastcodec (the archive's own writer) is tested against byte for byte. Compact
# separators and non-ASCII written as itself (what mongoexport writes); with these
# options json_util writes a non-finite double as {"$numberDouble": ...}, a date from
# 1970 to 9999 as ISO text without ".000", others as {"$numberLong": ...}, an Int64 as
# a plain integer and a binary of any subtype as {"$binary": ...}.
_LINE_OPTIONS: dict[str, Any] = {
    "json_options": RELAXED_JSON_OPTIONS,
    "separators": (",", ":"),
    "ensure_ascii": False,
}


def relaxed_line(document: Mapping[str, Any]) -> str:
    """One JSONL line (with its newline) for one whole stored document, as pymongo's
    ``json_util`` writes it (fastcodec.encode_batch writes the same bytes, faster)."""
    return json_util.dumps(document, **_LINE_OPTIONS) + "\n"


# SPEC section 3: a document whose Relaxed Extended JSON would not read back as itself
# (a payload object a parser takes for a type wrapper, e.g. {"$regex": "^adm"}) is
# written as {"bson": "<base64 of its BSON bytes>"}. No event has that shape (every
# event has seq and hash), so readers recognise it by its single key.
BSON_LINE_KEY = "bson"


def bson_line(raw: bytes) -> bytes:
    """The line (with its newline) that carries a stored document's BSON bytes."""
    return b'{"' + BSON_LINE_KEY.encode() + b'":"' + base64.b64encode(raw) + b'"}\n'


def bson_of_line(parsed: Mapping[str, Any]) -> bytes | None:
    """The BSON bytes a parsed ``{"bson": ...}`` line carries, or None for an event line."""
    value = parsed.get(BSON_LINE_KEY)
    if len(parsed) != 1 or not isinstance(value, str):
        return None
    return base64.b64decode(value, validate=True)


class LineError(ValueError):
    """A JSONL line that is not an archived event in either form of SPEC 3."""


@dataclass(frozen=True)
class EventLine:
    """One line of an events object, decoded: ``event`` is the stored document."""

    index: int  # 0-based position in the part (the Merkle leaf index)
    raw: bytes  # the line as archived, without its newline
    event: dict[str, Any]
    stored_bson: bytes | None  # the document's BSON bytes when the line carries them

    @property
    def seq(self) -> Any:
        return self.event.get("seq")

    @property
    def hash(self) -> Any:
        return self.event.get("hash")

    @property
    def rehashes(self) -> bool:
        return event_hash(self.event) == self.event.get("hash")

    def bson(self) -> bytes:
        """BSON bytes to restore: exactly as stored for a ``{"bson": ...}`` line, else
        the document encoded (Relaxed Extended JSON keeps every type but the integer
        width, which the hash scheme treats alike)."""
        if self.stored_bson is not None:
            return self.stored_bson
        return bson.encode(self.event, codec_options=EVENT_CODEC_OPTIONS)

    def plain(self) -> Any:
        """The event as plain JSON data (Relaxed Extended JSON), for matching by value."""
        if self.stored_bson is None:
            return json.loads(self.raw)
        return extended_json(self.event)


def read_line(raw: bytes | str, index: int = 0) -> EventLine:
    """Decode one line, in either form of SPEC 3; LineError if it is neither."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    try:
        parsed = json_util.loads(raw, json_options=RELAXED_JSON_OPTIONS)
        if not isinstance(parsed, dict):
            raise LineError("not a JSON object")
        stored = bson_of_line(parsed)
        event = parsed if stored is None else bson.decode(stored, EVENT_CODEC_OPTIONS)
    except (ValueError, TypeError, BSONError) as e:
        raise LineError(f"line {index + 1} is not an archived event: {e}") from None
    return EventLine(index, raw, event, stored)


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Read a JSONL line back into BSON-typed values (the inverse of relaxed_line and of
    bson_line), so every reader sees the stored document whichever form it was written in."""
    return read_line(line).event


def reads_back(line: bytes, raw: bytes, rehash: str) -> bool:
    """Whether ``line`` reads back (parse_line) as the document stored as ``raw``, judged
    on BSON bytes (SPEC 3): what it reads back as, encoded again, must be ``raw`` field
    for field and bit for bit (bsonpeek.same_document: only an int32/int64 width may
    differ), and re-hash to ``rehash``. Comparing decoded values would miss what decoding
    already lost: duplicate names, symbol and undefined (read as str and None), a
    DBPointer (read as a DBRef), regex flags out of order or unknown, a DBRef's field
    order, NaN payloads. A line a parser cannot read at all does not read back."""
    try:
        back = parse_line(line)
        again = bson.encode(back, codec_options=EVENT_CODEC_OPTIONS)
    except Exception:  # json_util raises many types for a bad wrapper
        return False
    return bsonpeek.same_document(again, raw) and event_hash(back) == rehash


@dataclass(frozen=True)
class WrittenFile:
    path: str
    sha256: str
    bytes: int
    bytes_uncompressed: int
    lines: int


class GzipJsonlWriter:
    """Append lines; compressed bytes go to disk and into a running sha256."""

    def __init__(self, path: str | Path, level: int = GZIP_LEVEL) -> None:
        self.path = str(path)
        self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        # wbits=31: a gzip wrapper with mtime 0 and no file name.
        self._compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
        self._sha = hashlib.sha256()
        self._pending: list[str] = []
        self._pending_len = 0
        self.bytes = 0
        self.bytes_uncompressed = 0
        self.lines = 0

    def write_line(self, line: str) -> None:
        self._pending.append(line)
        self._pending_len += len(line)
        self.lines += 1
        if self._pending_len >= _FLUSH_BYTES:
            self._flush()

    def write_encoded(self, raw: bytes, lines: int) -> None:
        """Append ``lines`` whole UTF-8 lines (each with its newline), compressed at once."""
        self._flush()
        self.lines += lines
        self.bytes_uncompressed += len(raw)
        self._compress(raw)

    def _compress(self, raw: bytes) -> None:
        self._emit(self._compressor.compress(raw))

    def _emit(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self._sha.update(data)
            self.bytes += len(data)

    def _flush(self) -> None:
        if self._pending:
            raw = "".join(self._pending).encode("utf-8")
            self.bytes_uncompressed += len(raw)
            self._compress(raw)
            self._pending.clear()
            self._pending_len = 0

    def close(self) -> WrittenFile:
        self._flush()
        self._emit(self._compressor.flush())
        self._file.close()
        return WrittenFile(
            self.path, self._sha.hexdigest(), self.bytes, self.bytes_uncompressed, self.lines
        )

    def abort(self) -> None:
        self._file.close()

    def __enter__(self) -> GzipJsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._file.closed:
            self.abort()


def iter_gzip_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decompress a gzip byte stream chunk by chunk and yield its lines (bounded memory).

    An archived object is exactly one gzip member: bytes after it (a second member, or
    anything appended) raise ValueError, since a reader that stopped at the first
    member would vouch for an object holding more than it read (and ``zcat`` shows
    every member)."""
    decompressor = zlib.decompressobj(31)
    rest = b""
    for chunk in chunks:
        if decompressor.eof:
            if chunk:
                raise ValueError("data after the gzip member")
            continue
        data = rest + decompressor.decompress(chunk)
        if decompressor.unused_data:
            raise ValueError("data after the gzip member")
        lines = data.split(b"\n")
        rest = lines.pop()
        yield from lines
    data = rest + decompressor.flush()
    if data:
        yield from data.split(b"\n")
    if not decompressor.eof:
        raise ValueError("truncated gzip stream")

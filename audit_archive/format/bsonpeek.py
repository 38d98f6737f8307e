"""Top-level fields of raw BSON documents, read without decoding the documents.

extract stages the day's events as the server's raw BSON (they are decoded once, while
encoding), yet it needs each event's ``seq``: the holes between them are where other
days' events may sit in the chain. Decoding a realistic event costs ~10 us; reading its
``seq`` here costs well under one when ``seq`` directly follows an ObjectId ``_id`` (as
in every event an application inserts), and a walk of the top-level elements otherwise.

Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

READ_CHUNK = 1 << 20  # bytes of staged events decoded at once: ~1,400 realistic events

# Value sizes of the fixed-size BSON element types (bsonspec.org).
_FIXED = {
    0x01: 8,  # double
    0x06: 0,  # undefined
    0x07: 12,  # ObjectId
    0x08: 1,  # bool
    0x09: 8,  # UTC datetime
    0x0A: 0,  # null
    0x10: 4,  # int32
    0x11: 8,  # timestamp
    0x12: 8,  # int64
    0x13: 16,  # decimal128
    0x7F: 0,  # max key
    0xFF: 0,  # min key
}
# Length-prefixed values: what follows the int32 beyond the bytes it counts.
_PREFIXED_EXTRA = {0x02: 4, 0x0D: 4, 0x0E: 4, 0x05: 5, 0x03: 0, 0x04: 0, 0x0F: 0}
_INT32, _INT64, _STRING = 0x10, 0x12, 0x02
_ID_OID = b"\x07_id\x00"  # an ObjectId _id as the first element
_SEQ_NAME = b"seq\x00"
_U32 = struct.Struct("<I").unpack_from
_PACK_U32 = struct.Struct("<I").pack
_I32 = struct.Struct("<i").unpack_from
_I64 = struct.Struct("<q").unpack_from


def documents(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each document in concatenated BSON (a server's raw batch)."""
    pos, total = 0, len(data)
    while pos < total:
        end = pos + int.from_bytes(data[pos : pos + 4], "little")
        yield pos, end
        pos = end


def whole_documents(file: BinaryIO, chunk: int | None = None) -> Iterator[bytes]:
    """Concatenated BSON from a file, in pieces of about ``chunk`` bytes (more for a
    bigger document) that end on a document boundary: each is one ``decode_all``,
    where a document at a time costs a Python round per event."""
    from audit_archive.format import nativecodec  # C first; it imports nothing from here

    rest = b""
    while data := file.read(chunk or READ_CHUNK):
        buffer = rest + data if rest else data
        end = nativecodec.complete_prefix(buffer)
        if end is None:
            end = complete_prefix(buffer)
        if end:
            yield buffer[:end]
        rest = buffer[end:]
    if rest:
        raise ValueError(f"the staged events end in a truncated document ({len(rest)} bytes)")


def complete_prefix(data: bytes) -> int:
    """The length of the longest run of whole documents at the start of ``data``."""
    pos, total = 0, len(data)
    while pos + 4 <= total:
        size = int.from_bytes(data[pos : pos + 4], "little")
        if size < 5 or pos + size > total:
            break
        pos += size
    return pos


def document_offsets(data: bytes) -> list[int]:
    """Where each document of concatenated BSON starts, then where the last one ends:
    document i is ``data[offsets[i]:offsets[i + 1]]``."""
    return [0, *(end for _, end in documents(data))]


def array_documents(array: bytes) -> bytes:
    """The embedded documents of the BSON array ``array`` (a cursor reply's batch),
    concatenated: the form in which extract stages a day's events. ValueError unless
    every element is a whole document and the sizes add up."""
    size = len(array)
    if size < 5 or int.from_bytes(array[:4], "little") != size or array[-1] != 0:
        raise ValueError("a cursor batch that is not one whole BSON array")
    pieces, at = [], 4
    while at < size - 1:
        if array[at] != 0x03:
            raise ValueError(f"a cursor batch element of type 0x{array[at]:02x}, not a document")
        start = array.index(0, at + 1) + 1
        end = start + int.from_bytes(array[start : start + 4], "little")
        if not start + 5 <= end <= size - 1 or array[end - 1] != 0:
            raise ValueError("a cursor batch element whose size does not fit the batch")
        pieces.append(array[start:end])
        at = end
    return b"".join(pieces)


def cursor_batch(reply: bytes) -> tuple[bytes, str, bytes] | None:
    """A find or getMore reply split into its batch (the BSON array at cursor.firstBatch
    or cursor.nextBatch), that field's name, and the reply without it (a few small fields
    for the driver to decode); None when the reply has no such batch (an error reply)."""
    found = find(reply, 0, len(reply), b"cursor")
    if found is None or found[0] != 0x03:
        return None
    cursor = found[1]
    cursor_end = cursor + _U32(reply, cursor)[0]
    for key in ("firstBatch", "nextBatch"):
        hit = find(reply, cursor, cursor_end, key.encode())
        if hit is not None and hit[0] == 0x04:
            break
    else:
        return None
    value = hit[1]
    element, value_end = value - len(key) - 2, value + _U32(reply, value)[0]
    cut = value_end - element
    rest = b"".join(
        (
            _PACK_U32(len(reply) - cut),
            reply[4:cursor],
            _PACK_U32(cursor_end - cursor - cut),
            reply[cursor + 4 : element],
            reply[value_end:],
        )
    )
    return reply[value:value_end], key, rest


def value_end(data: bytes, kind: int, at: int) -> int:
    """Where the value of type ``kind`` that starts at ``at`` ends (bsonspec.org sizes)."""
    size = _FIXED.get(kind)
    if size is not None:
        return at + size
    extra = _PREFIXED_EXTRA.get(kind)
    if extra is not None:
        return at + int.from_bytes(data[at : at + 4], "little", signed=True) + extra
    if kind == 0x0B:  # regex: two C strings
        return data.index(0, data.index(0, at) + 1) + 1
    if kind == 0x0C:  # DBPointer: a string, then an ObjectId
        return at + 4 + int.from_bytes(data[at : at + 4], "little", signed=True) + 12
    raise ValueError(f"unknown BSON element type 0x{kind:02x}")


def find(data: bytes, start: int, end: int, name: bytes) -> tuple[int, int] | None:
    """(type, offset of the value) of the top-level element ``name`` of the document
    at ``data[start:end]``, or None when it has none."""
    at = start + 4
    while at < end - 1:
        kind = data[at]
        name_end = data.index(0, at + 1)
        if data[at + 1 : name_end] == name:
            return kind, name_end + 1
        at = value_end(data, kind, name_end + 1)
    return None


def _int_at(data: bytes, kind: int, at: int) -> int | None:
    if kind == _INT32:
        return int.from_bytes(data[at : at + 4], "little", signed=True)
    if kind == _INT64:
        return int.from_bytes(data[at : at + 8], "little", signed=True)
    return None


def int_seqs(data: bytes) -> list[int | None]:
    """int_seq of each document in concatenated BSON, the usual layout read in place
    (this runs once per event staged)."""
    out: list[int | None] = []
    append, pos, total = out.append, 0, len(data)
    while pos < total:
        end = pos + _U32(data, pos)[0]
        if data.startswith(_ID_OID, pos + 4) and data.startswith(_SEQ_NAME, pos + 22):
            kind = data[pos + 21]
            if kind == _INT32:
                append(_I32(data, pos + 26)[0])
            elif kind == _INT64:
                append(_I64(data, pos + 26)[0])
            else:
                append(None)
        else:
            append(int_seq(data, pos, end))
        pos = end
    return out


def int_seq(data: bytes, start: int, end: int) -> int | None:
    """The document's ``seq`` if it is a BSON int32 or int64 (malformed.is_integer_seq),
    else None."""
    if data.startswith(_ID_OID, start + 4) and data.startswith(_SEQ_NAME, start + 22):
        return _int_at(data, data[start + 21], start + 26)
    found = find(data, start, end, b"seq")
    return None if found is None else _int_at(data, *found)


def string(data: bytes, start: int, end: int, name: bytes) -> str | None:
    """The top-level string field ``name`` of the document, or None (absent, or not a
    string)."""
    found = find(data, start, end, name)
    if found is None or found[0] != _STRING:
        return None
    at = found[1]
    length = int.from_bytes(data[at : at + 4], "little", signed=True)
    return data[at + 4 : at + 3 + length].decode("utf-8", "replace")


_DOCUMENT, _ARRAY = 0x03, 0x04
_INTEGERS = (_INT32, _INT64)


def same_document(a: bytes, b: bytes) -> bool:
    """Whether two BSON documents hold the same values as stored, byte for byte: the same
    field names in the same order (duplicates included) with the same types and value
    bytes, except that an int32 and an int64 of the same value are alike (the one
    difference SPEC 3 allows a line that reads back). Malformed BSON is never the same."""
    if a == b:
        return True
    try:
        return _same_elements(a, 0, b, 0)
    except (ValueError, IndexError):
        return False


def _same_elements(a: bytes, a_start: int, b: bytes, b_start: int) -> bool:
    """Element by element, the documents at ``a[a_start:]`` and ``b[b_start:]``."""
    i, j = a_start + 4, b_start + 4
    a_end, b_end = a_start + _U32(a, a_start)[0] - 1, b_start + _U32(b, b_start)[0] - 1
    while i < a_end and j < b_end:
        kind_a, kind_b = a[i], b[j]
        name_a, name_b = a.index(0, i + 1), b.index(0, j + 1)
        if a[i + 1 : name_a] != b[j + 1 : name_b]:
            return False
        i, j = name_a + 1, name_b + 1
        if kind_a in _INTEGERS and kind_b in _INTEGERS:
            if _int_at(a, kind_a, i) != _int_at(b, kind_b, j):
                return False
        elif kind_a != kind_b:
            return False
        elif kind_a in (_DOCUMENT, _ARRAY):
            if not _same_elements(a, i, b, j):
                return False
        elif a[i : value_end(a, kind_a, i)] != b[j : value_end(b, kind_b, j)]:
            return False
        i, j = value_end(a, kind_a, i), value_end(b, kind_b, j)
    return i == a_end and j == b_end and a[a_end] == 0 and b[b_end] == 0

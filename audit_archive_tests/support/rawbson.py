"""BSON written byte by byte, for documents pymongo would not write (invalid UTF-8 in a
name, a bool byte of 2, a string whose length lies, types it never writes, fields in any
order): what the encoders must take or refuse as stored."""

from __future__ import annotations

import struct


def cstring(text: str | bytes) -> bytes:
    """A name as BSON stores it: the bytes and a NUL."""
    return (text.encode() if isinstance(text, str) else text) + b"\x00"


def string(text: str | bytes) -> bytes:
    """A string value: its length (NUL included), the bytes and a NUL."""
    data = cstring(text)
    return struct.pack("<i", len(data)) + data


def element(kind: int, name: str | bytes, value: bytes) -> bytes:
    """One element: its type byte, its name, its value bytes as given."""
    return bytes([kind]) + cstring(name) + value


def document(*elements: bytes) -> bytes:
    """A document of these elements: its length, the elements and a NUL."""
    body = b"".join(elements) + b"\x00"
    return struct.pack("<i", len(body) + 4) + body

"""Reading an events object back from cold storage, line by line, checked.

The low level under audit.reader's CheckedPart, which the archiver's interrupted-purge
recovery and verify --deep also use directly: below both archive/ and audit/, so
neither imports the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audit_archive.format.jsonl import iter_gzip_lines, read_line

if TYPE_CHECKING:
    from audit_archive.stores.cold import ColdStore


@dataclass
class PartStream:
    """An events object's lines as they are decompressed; after the last one,
    ``sha256`` and ``bytes`` describe what was read. The low level of CheckedPart
    (the archiver's interrupted-purge recovery and verify --deep use it directly)."""

    cold: ColdStore
    key: str
    sha256: str = ""
    bytes: int = 0
    lines: int = 0
    bad_hashes: list[int] = field(default_factory=list)  # line numbers (0-based)
    _done: bool = False

    def raw_lines(self) -> Iterator[bytes]:
        sha = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            for chunk in self.cold.iter_chunks(self.key):
                sha.update(chunk)
                self.bytes += len(chunk)
                yield chunk

        for line in iter_gzip_lines(chunks()):
            if line:
                self.lines += 1
                yield line
        self.sha256 = sha.hexdigest()
        self._done = True

    def events(self) -> Iterator[dict[str, Any]]:
        """Decoded events; each one's hash is checked (mismatches in ``bad_hashes``)."""
        for i, raw in enumerate(self.raw_lines()):
            line = read_line(raw, i)
            if not line.rehashes:
                self.bad_hashes.append(i)
            yield line.event

    def check(self, sha256: str | None, size: int | None = None) -> None:
        """Raise PartReadError unless the whole object was read and matches."""
        if not self._done:
            raise PartReadError(f"{self.key}: not read to the end")
        if sha256 is not None and self.sha256 != sha256:
            raise PartReadError(f"{self.key}: sha256 differs from its manifest/record")
        if size is not None and self.bytes != size:
            raise PartReadError(f"{self.key}: {self.bytes} bytes, expected {size}")
        if self.bad_hashes:
            raise PartReadError(f"{self.key}: {len(self.bad_hashes)} event(s) do not re-hash")


class PartReadError(Exception):
    """The part's bytes are not what its manifest or record promise."""

"""Reading parts back from cold storage, with every check the format allows.

Shared by the archiver (finishing an interrupted purge), ``verify --deep``, restore,
prove and search, so "read a part" means the same everywhere: the manifest's signature,
the object's sha256 and size, and each event's hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from audit_archive.format.canonical import event_hash
from audit_archive.format.jsonl import iter_gzip_lines, parse_line
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive.stores.cold import ColdStore


class PartReadError(Exception):
    """The part's bytes are not what its manifest or record promise."""


@dataclass(frozen=True)
class LoadedManifest:
    key: str
    manifest: dict[str, Any]
    sha256: str
    bytes: int
    status: SignatureStatus


def load_manifest(cold: ColdStore, key: str, keys: Iterable[str]) -> LoadedManifest:
    raw = cold.get_bytes(key)
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = {}
    status = (
        verify_signature(manifest, keys) if isinstance(manifest, dict) else SignatureStatus.MODIFIED
    )
    return LoadedManifest(key, manifest, hashlib.sha256(raw).hexdigest(), len(raw), status)


@dataclass
class PartStream:
    """Iterate ``events()`` to the end; then ``sha256``/``bytes`` describe what was read.

    Events are yielded as they are decompressed (bounded memory); a caller that acts on
    them irreversibly must finish the stream and call ``check()`` first.
    """

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
        for i, line in enumerate(self.raw_lines()):
            doc = parse_line(line)
            if event_hash(doc) != doc.get("hash"):
                self.bad_hashes.append(i)
            yield doc

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

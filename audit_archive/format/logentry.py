"""Where the signed log lives in the bucket, and its entry objects (SPEC section 7).

- ``<prefix>/log/entries/<index, 12 digits>.json``: ``{"index", "manifestKey",
  "manifestSha256"}``, one per leaf, so the tree can be rebuilt from the bucket alone;
- ``<prefix>/log/checkpoints/<size, 12 digits>``: the checkpoint of each size, never
  rewritten;
- ``<prefix>/log/checkpoint``: the latest checkpoint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

INDEX_DIGITS = 12
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NUMBERED = re.compile(r"^[0-9]{12}$")


def log_prefix(prefix: str) -> str:
    return f"{prefix}/log/" if prefix else "log/"


def entries_prefix(prefix: str) -> str:
    return log_prefix(prefix) + "entries/"


def checkpoints_prefix(prefix: str) -> str:
    return log_prefix(prefix) + "checkpoints/"


def witnessed_prefix(prefix: str) -> str:
    """``log/witnessed/<size>``: a checkpoint with the cosignatures of a quorum (SPEC 8)."""
    return log_prefix(prefix) + "witnessed/"


def witnessed_key(prefix: str, size: int) -> str:
    return f"{witnessed_prefix(prefix)}{size:0{INDEX_DIGITS}d}"


def size_of_witnessed_key(prefix: str, key: str) -> int | None:
    base = witnessed_prefix(prefix)
    digits = key[len(base) :] if key.startswith(base) else ""
    return int(digits) if _NUMBERED.match(digits) else None


def entry_key(prefix: str, index: int) -> str:
    return f"{entries_prefix(prefix)}{index:0{INDEX_DIGITS}d}.json"


def checkpoint_key(prefix: str, size: int) -> str:
    return f"{checkpoints_prefix(prefix)}{size:0{INDEX_DIGITS}d}"


def latest_checkpoint_key(prefix: str) -> str:
    return log_prefix(prefix) + "checkpoint"


def index_of_entry_key(prefix: str, key: str) -> int | None:
    """The index an entry key names, or None for any other key."""
    base = entries_prefix(prefix)
    if not key.startswith(base) or not key.endswith(".json"):
        return None
    digits = key[len(base) : -len(".json")]
    return int(digits) if _NUMBERED.match(digits) else None


def size_of_checkpoint_key(prefix: str, key: str) -> int | None:
    base = checkpoints_prefix(prefix)
    digits = key[len(base) :] if key.startswith(base) else ""
    return int(digits) if _NUMBERED.match(digits) else None


@dataclass(frozen=True)
class Entry:
    index: int
    manifest_key: str
    manifest_sha256: str

    def to_bytes(self) -> bytes:
        """Compact JSON with a final newline: one spelling per entry."""
        doc = {
            "index": self.index,
            "manifestKey": self.manifest_key,
            "manifestSha256": self.manifest_sha256,
        }
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode("utf-8")


class EntryError(ValueError):
    """An entry object that is not one."""


def parse_entry(data: bytes) -> Entry:
    try:
        doc: Any = json.loads(data)
    except ValueError:
        raise EntryError("not JSON") from None
    if not isinstance(doc, dict):
        raise EntryError("not a JSON object")
    index, key, sha = doc.get("index"), doc.get("manifestKey"), doc.get("manifestSha256")
    if type(index) is not int or index < 0:
        raise EntryError("index is not a non-negative integer")
    if not isinstance(key, str) or not key:
        raise EntryError("manifestKey is not a key")
    if not isinstance(sha, str) or not _HEX64.match(sha):
        raise EntryError("manifestSha256 is not 64 lowercase hex characters")
    return Entry(index, key, sha)

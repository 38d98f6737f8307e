"""Build, sign and verify part manifests (``version`` 1).

The signature is an HMAC-SHA-256 over the canonical JSON of the manifest without its
``signature`` (so the key id is covered). Nothing here depends on wall-clock time:
re-archiving the same events gives the same manifest bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from audit_archive.format.canonical import HASH_SCHEME, canonical_json

MANIFEST_VERSION = 1
SIGNING_ALG = "HMAC-SHA256"


def key_id(key: str) -> str:
    """First 16 hex characters of sha256 of the key's UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PartSummary:
    """What the writer learned while streaming one part; the manifest is built from it."""

    day: str
    part: int
    event_count: int
    start_seq: int | None
    end_seq: int | None
    first_prev_hash: str | None
    last_hash: str | None
    chain_edges: list[dict[str, Any]]
    merkle_root: str | None
    jsonl_key: str | None
    jsonl_sha256: str | None
    jsonl_bytes: int
    jsonl_bytes_uncompressed: int


def build_manifest(summary: PartSummary) -> dict[str, Any]:
    """The unsigned manifest, fields in the SPEC's order."""
    empty = summary.event_count == 0
    return {
        "version": MANIFEST_VERSION,
        "day": summary.day,
        "part": summary.part,
        "eventCount": summary.event_count,
        "startSeq": summary.start_seq,
        "endSeq": summary.end_seq,
        "firstPrevHash": summary.first_prev_hash,
        "lastHash": summary.last_hash,
        "chainEdges": list(summary.chain_edges),
        "merkleRoot": summary.merkle_root,
        "hashScheme": HASH_SCHEME,
        "jsonl": None
        if empty
        else {
            "key": summary.jsonl_key,
            "sha256": summary.jsonl_sha256,
            "bytes": summary.jsonl_bytes,
            "bytesUncompressed": summary.jsonl_bytes_uncompressed,
        },
    }


def _mac(key: str, unsigned: Mapping[str, Any]) -> str:
    return hmac.new(key.encode("utf-8"), canonical_json(unsigned), hashlib.sha256).hexdigest()


def sign_manifest(manifest: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Return a copy with ``signing`` and ``signature`` set for ``key``."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    unsigned["signing"] = {"alg": SIGNING_ALG, "keyId": key_id(key)}
    return {**unsigned, "signature": _mac(key, unsigned)}


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The object's bytes: pretty-printed for people, deterministic for machines."""
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


class SignatureStatus(StrEnum):
    VALID = "valid"
    MODIFIED = "modified"  # signed by a known key, but the content does not match
    UNVERIFIABLE = "unverifiable"  # signed with a key id we do not hold


def verify_signature(manifest: Mapping[str, Any], keys: Iterable[str]) -> SignatureStatus:
    """Check the HMAC with whichever known key the manifest names."""
    signing = manifest.get("signing")
    signature = manifest.get("signature")
    if not isinstance(signing, Mapping) or not isinstance(signature, str):
        return SignatureStatus.MODIFIED
    if signing.get("alg") != SIGNING_ALG:
        return SignatureStatus.MODIFIED
    by_id = {key_id(k): k for k in keys}
    key = by_id.get(signing.get("keyId"))  # type: ignore[arg-type]
    if key is None:
        return SignatureStatus.UNVERIFIABLE
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    if hmac.compare_digest(_mac(key, unsigned), signature):
        return SignatureStatus.VALID
    return SignatureStatus.MODIFIED

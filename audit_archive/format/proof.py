"""Inclusion proofs: one archived event, shown to be part of a signed manifest.

Pure: no I/O. ``build_proof`` turns a part's event hashes, one event's JSONL line and
the part's signed manifest into a proof document; ``check_proof`` verifies such a
document offline with nothing but the signing key(s). An auditor can be handed one
event without the rest of its day: the RFC 6962 audit path reveals only hashes.

What a proof covers: every field of the event except ``_id`` (the hash scheme
excludes ``_id``, so nothing signed binds it), its position in the part, and the
whole manifest (day, part, seq range, chain edges, object sha256, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit_archive.format import layout
from audit_archive.format.canonical import HASH_SCHEME, event_hash
from audit_archive.format.jsonl import parse_line
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive.format.merkle import audit_path, root_from_path

PROOF_FORMAT = "audit-archive-event-proof"
PROOF_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def build_proof(
    event_hashes: Sequence[str],
    index: int,
    event_line: str,
    manifest: Mapping[str, Any],
    manifest_key: str | None = None,
) -> dict[str, Any]:
    """The proof document for the event at ``index`` of a part (leaves in seq order).

    ``event_line`` is the event's JSONL line as archived (without its newline), so the
    auditor sees exactly the bytes the archive holds.
    """
    if len(event_hashes) != manifest.get("eventCount"):
        raise ValueError(
            f"{len(event_hashes)} event hashes, but the manifest counts {manifest.get('eventCount')}"
        )
    return {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "hashScheme": HASH_SCHEME,
        "eventLine": event_line.rstrip("\n"),
        "leafIndex": index,
        "treeSize": len(event_hashes),
        "auditPath": audit_path(event_hashes, index),
        "manifestKey": manifest_key,
        "manifest": dict(manifest),
    }


@dataclass
class ProofCheck:
    """The outcome: ``ok`` only when every check held; ``problems`` says which did not."""

    problems: list[str] = field(default_factory=list)
    status: SignatureStatus | None = None
    seq: Any = None
    day: str | None = None
    part: Any = None
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.status is SignatureStatus.VALID


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_proof(proof: Any, keys: Iterable[str]) -> ProofCheck:
    """Verify a proof offline: the event re-hashes to its ``hash``, the audit path
    leads from that hash to the manifest's ``merkleRoot``, and the manifest's signature
    holds with one of ``keys``. Never raises on bad input: every defect is a problem."""
    result = ProofCheck()
    problems = result.problems
    if not isinstance(proof, Mapping):
        problems.append("not a proof: expected a JSON object")
        return result
    if proof.get("format") != PROOF_FORMAT or proof.get("version") != PROOF_VERSION:
        problems.append(f"not a {PROOF_FORMAT} version {PROOF_VERSION} document")
        return result
    manifest = proof.get("manifest")
    if not isinstance(manifest, Mapping):
        problems.append("the proof carries no manifest")
        return result
    result.day, result.part = manifest.get("day"), manifest.get("part")
    signing = manifest.get("signing")
    result.key_id = signing.get("keyId") if isinstance(signing, Mapping) else None

    # 1. The manifest is what the archive signed.
    result.status = verify_signature(manifest, keys)
    if result.status is SignatureStatus.MODIFIED:
        problems.append("manifest signature does not match: the manifest was changed")
    elif result.status is SignatureStatus.UNVERIFIABLE:
        problems.append(
            f"manifest is signed with key id {result.key_id}, which none of the given keys has"
        )
    if manifest.get("hashScheme") != HASH_SCHEME or proof.get("hashScheme") != HASH_SCHEME:
        problems.append(f"hash scheme is not {HASH_SCHEME}")

    # 2. The event re-hashes to the hash it carries.
    line = proof.get("eventLine")
    try:
        if not isinstance(line, str):
            raise ValueError
        event = parse_line(line)
        if not isinstance(event, dict):
            raise ValueError
    except ValueError:
        problems.append("eventLine is not an Extended JSON object")
        return result
    result.seq = event.get("seq")
    claimed = event.get("hash")
    if not isinstance(claimed, str) or not _HEX64.match(claimed):
        problems.append("the event has no 64-hex hash")
        return result
    if event_hash(event) != claimed:
        problems.append("the event does not re-hash to its hash: its content was changed")

    # 3. The path leads from the event's hash to the signed Merkle root.
    index, size, path = proof.get("leafIndex"), proof.get("treeSize"), proof.get("auditPath")
    if not (_int(index) and _int(size)):
        problems.append("leafIndex and treeSize must be integers")
    elif size != manifest.get("eventCount"):
        problems.append(f"treeSize {size} differs from the manifest's eventCount")
    elif not (isinstance(path, list) and all(isinstance(p, str) and _HEX64.match(p) for p in path)):
        problems.append("auditPath must be a list of 64-hex hashes")
    else:
        try:
            root = root_from_path(claimed, index, size, path)
        except ValueError as e:
            problems.append(f"audit path does not fit the tree: {e}")
        else:
            if root != manifest.get("merkleRoot"):
                problems.append("audit path does not lead to the manifest's merkleRoot")

    # 4. The event belongs where the manifest says its part is.
    lo, hi = manifest.get("startSeq"), manifest.get("endSeq")
    if not (_int(result.seq) and _int(lo) and _int(hi) and lo <= result.seq <= hi):
        problems.append(f"seq {result.seq} is outside the part's range {lo}-{hi}")
    at = event.get("at")
    if not isinstance(at, dt.datetime) or layout.format_day(at.date()) != manifest.get("day"):
        problems.append(f"the event's at is not on the part's day {manifest.get('day')}")
    return result


def describe(check: ProofCheck) -> str:
    """One line for people: what was proven, or every reason it was not."""
    where = f"seq {check.seq} in {check.day} part {check.part}"
    if check.ok:
        return f"valid: {where} (manifest key id {check.key_id})"
    about = f" for {where}" if check.seq is not None else ""
    return f"INVALID proof{about}: " + "; ".join(check.problems)


def dumps(proof: Mapping[str, Any]) -> str:
    """The proof file's text: pretty JSON, like the manifest objects."""
    return json.dumps(proof, indent=2, ensure_ascii=False) + "\n"

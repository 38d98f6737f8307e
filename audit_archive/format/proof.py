"""Inclusion proofs: one archived event, shown to be part of a signed manifest.

The proof document, a data contract like the manifest: ``build_proof`` turns a part's
event hashes, one event's JSONL line (in either form of SPEC 3) and the part's signed
manifest into a proof document; audit/prove.py finds the event and checks proofs
offline (``check_proof``) with the same checks as every other reader. An auditor can
be handed one event without the rest of its day: the RFC 6962 audit path reveals only
hashes.

What a proof covers: every field of the event except ``_id`` (the hash scheme
excludes ``_id``, so nothing signed binds it), its position in the part, and the
whole manifest (day, part, seq range, chain edges, object sha256, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit_archive.format.canonical import HASH_SCHEME
from audit_archive.format.manifest import SignatureStatus
from audit_archive.format.merkle import audit_path

PROOF_FORMAT = "audit-archive-event-proof"
PROOF_VERSION = 1


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
    logged: bool = False  # the manifest's place in the signed log checked out (SPEC 7)

    @property
    def ok(self) -> bool:
        return not self.problems and self.status is SignatureStatus.VALID


def describe(check: ProofCheck) -> str:
    """One line for people: what was proven, or every reason it was not."""
    where = f"seq {check.seq} in {check.day} part {check.part}"
    if check.ok:
        how = "in the signed log" if check.logged else f"manifest key id {check.key_id}"
        return f"valid: {where} ({how})"
    about = f" for {where}" if check.seq is not None else ""
    return f"INVALID proof{about}: " + "; ".join(check.problems)


def dumps(proof: Mapping[str, Any]) -> str:
    """The proof file's text: pretty JSON, like the manifest objects."""
    return json.dumps(proof, indent=2, ensure_ascii=False) + "\n"

"""The ``log`` object of an event proof (SPEC section 7): the part's manifest bytes, their
RFC 6962 inclusion path and the signed checkpoint it leads to. Pure: no I/O.

With it, ``check-proof`` needs only the log's public verifier key: the checkpoint's
signature authenticates the root, the path ties the exact manifest bytes to that root,
and the proof's ``manifest`` must be those bytes parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from audit_archive.format.checkpoint import open_checkpoint
from audit_archive.format.note import NoteError, Verifier
from audit_archive.format.tlog import ProofError, leaf_hash, verify_inclusion
from audit_archive.format.witness import cosignatures

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def build_log_object(
    index: int, size: int, path: Sequence[bytes], manifest_bytes: bytes, checkpoint_note: str
) -> dict[str, Any]:
    return {
        "index": index,
        "treeSize": size,
        "inclusionPath": [p.hex() for p in path],
        "manifestBytes": base64.b64encode(manifest_bytes).decode("ascii"),
        "checkpoint": checkpoint_note,
    }


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_log_object(log: Any, manifest: Mapping[str, Any] | None, verifier: Verifier) -> list[str]:
    """Problems with a proof's ``log`` object (empty: the manifest is in the signed log)."""
    if not isinstance(log, Mapping):
        return ["the proof has no signed-log object (log)"]
    index, size, path = log.get("index"), log.get("treeSize"), log.get("inclusionPath")
    note, encoded = log.get("checkpoint"), log.get("manifestBytes")
    if not (_int(index) and _int(size)):
        return ["log.index and log.treeSize must be integers"]
    if not (isinstance(path, list) and all(isinstance(p, str) and _HEX64.match(p) for p in path)):
        return ["log.inclusionPath must be a list of 64-hex hashes"]
    if not isinstance(note, str):
        return ["log.checkpoint must be the signed checkpoint's text"]
    try:
        data = base64.b64decode(str(encoded).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return ["log.manifestBytes is not base64"]
    problems = []
    try:
        checkpoint = open_checkpoint(note, verifier)
    except NoteError as e:
        return [f"the log checkpoint does not verify with the verifier key: {e}"]
    if checkpoint.size != size:
        problems.append(f"log.treeSize {size} is not the checkpoint's size {checkpoint.size}")
    else:
        try:
            verify_inclusion(
                index, size, leaf_hash(data), [bytes.fromhex(p) for p in path], checkpoint.root
            )
        except ProofError as e:
            problems.append(f"the manifest is not in the signed log at that index: {e}")
    try:
        logged = json.loads(data)
    except ValueError:
        logged = None
    if logged != manifest:
        problems.append("the proof's manifest is not the logged manifest bytes")
    return problems


def witness_problems(note: str, witnesses: Sequence[Verifier], quorum: int) -> list[str]:
    """Problems when the proof's checkpoint lacks ``quorum`` valid cosignatures of the
    given witness keys (lines of other keys are ignored)."""
    try:
        found = cosignatures(note, witnesses)
    except NoteError as e:
        return [f"the log checkpoint is not a signed note: {e}"]
    if len(found) >= quorum:
        return []
    names = ", ".join(sorted(c.witness for c in found)) or "none"
    return [
        f"the log checkpoint carries valid cosignatures of {len(found)} of the given witnesses "
        f"({names}); {quorum} needed"
    ]

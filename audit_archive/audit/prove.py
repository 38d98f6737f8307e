"""Inclusion proofs, the reading half: ``prove`` finds one archived event by ``seq`` and
builds its proof; ``check_proof`` verifies such a proof offline. The proof document
itself (its fields, building it, printing it) is the data contract in format/proof.py.

Both use the checked-part reader (reader.py), so a proof is issued and accepted under
exactly the checks every other reader applies: the manifest's signature valid with a
known key, the object's sha256 and size as signed, every event re-hashing, the Merkle
root recomputed from the object equal to the signed one; and either line form of SPEC 3
(a ``{"bson": ...}`` line is proven like any other: the proof carries the line as
archived, and its decoded document is what re-hashes).

The part is found through the batch records' seq ranges. Ranges of parts can overlap
when days interleave, so every candidate is read until the event turns up; a candidate
that does not check out does not block a valid part that holds the event, and is named
only when no valid part does. Memory: the part's event hashes (~100 bytes per event).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from audit_archive.audit.reader import CheckedPart, open_part, signature_problem
from audit_archive.audit.signed_log_view import LogProofError, LogViewOnce, log_view
from audit_archive.errors import AuditArchiveError
from audit_archive.format import layout
from audit_archive.format import proof as proof_doc
from audit_archive.format.canonical import HASH_SCHEME
from audit_archive.format.chain import HEX64
from audit_archive.format.jsonl import EventLine, LineError, read_line
from audit_archive.format.logproof import check_log_object, witness_problems
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive.format.merkle import root_from_path
from audit_archive.format.note import Verifier
from audit_archive.format.proof import ProofCheck
from audit_archive.stores.clients import Stores

# The widest integer MongoDB stores (BSON int64); a seq beyond it cannot exist.
SEQ_MIN, SEQ_MAX = -(2**63), 2**63 - 1


class ProveError(AuditArchiveError):
    """No proof can be issued: the event is not archived, or its part does not check out."""


def check_seq(seq: int) -> None:
    """ValueError unless ``seq`` is an integer MongoDB can store (8 bytes)."""
    if not SEQ_MIN <= seq <= SEQ_MAX:
        raise ValueError(
            f"seq {seq} does not fit in 8 bytes: seqs are BSON integers ({SEQ_MIN} to {SEQ_MAX})"
        )


# Events of the part read so far, and the part's count (a progress bar), every 1000.
ProveProgress = Callable[[int, int], None]
PROGRESS_STEP = 1000


def _read(
    part: CheckedPart, seq: int, progress: ProveProgress | None = None
) -> tuple[list[str], EventLine | None]:
    """Every event hash of the part (the Merkle leaves) and the line of ``seq``."""
    hashes: list[str] = []
    found: EventLine | None = None
    total = int(part.event_count or 0)
    for line in part.lines():
        hashes.append(line.hash if isinstance(line.hash, str) else "")
        if is_integer_seq(line.seq) and line.seq == seq:
            found = line
        if progress is not None and len(hashes) % PROGRESS_STEP == 0:
            progress(len(hashes), total)
    if progress is not None:
        progress(len(hashes), total)
    return hashes, found


def prove_seq(stores: Stores, seq: int, progress: ProveProgress | None = None) -> dict[str, Any]:
    """The proof document for the archived event ``seq``; ProveError if there is none.
    ``progress`` hears how much of the part holding it has been read.

    ValueError if ``seq`` cannot be a seq at all (more than 8 bytes)."""
    check_seq(seq)
    keys = stores.settings.verification_keys
    # One view of the signed log, opened at most once: it vouches for a part without the
    # HMAC key, and gives the proof's ``log`` object.
    log = log_view(stores)
    refused: list[str] = []
    for record in stores.batches.records_holding_seq(seq):
        if not record.get("eventCount"):
            continue
        part = open_part(stores.cold, record, keys, log.vouch if log is not None else None)
        hashes, found = _read(part, seq, progress) if part.ok else ([], None)
        if not part.ok:
            refused.append(part.describe())
        elif found is not None:
            document = proof_doc.build_proof(
                hashes,
                found.index,
                found.raw.decode("utf-8"),
                part.manifest,
                record.get("manifestKey"),
            )
            if log is not None:
                document["log"] = _log_object(log, part)
            return document
    if refused:
        raise ProveError(
            f"seq {seq} is in no part that checks out; no proof issued: " + "; ".join(refused)
        )
    hint = " (it is still in hot storage, not yet archived)" if stores.events.has_seq(seq) else ""
    raise ProveError(f"seq {seq} is not in any archived part{hint}")


def _log_object(log: LogViewOnce, part: CheckedPart) -> dict[str, Any]:
    """The proof's ``log`` object (SPEC section 7), over the manifest's bytes as the reader
    read and checked them."""
    try:
        return log.view().log_object(str(part.record.get("manifestKey")), part.manifest_bytes)
    except LogProofError as e:
        raise ProveError(f"{part.where}: {e}; no proof issued") from None


def check_proof(
    proof: Any,
    keys: Iterable[str],
    verifier: Verifier | None = None,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
) -> ProofCheck:
    """Verify a proof offline: the event re-hashes to its ``hash``, the audit path
    leads from that hash to the manifest's ``merkleRoot``, and the manifest's signature
    holds with one of ``keys``, or (with the signed log's public ``verifier`` key) the
    proof's ``log`` object puts the manifest's exact bytes in a signed checkpoint.
    With ``witnesses``, the proof's checkpoint must also carry valid cosignatures of
    ``quorum`` of them (SPEC section 8). Never raises on bad input: every defect is a
    problem."""
    result = ProofCheck()
    manifest = _proof_manifest(proof, result)
    if manifest is None:
        return result
    result.day, result.part = manifest.get("day"), manifest.get("part")
    signing = manifest.get("signing")
    result.key_id = signing.get("keyId") if isinstance(signing, Mapping) else None
    problems = result.problems

    # 1. The manifest is what the archive signed (the reader's signature check), or,
    # with the verifier key, what the signed log holds (SPEC section 7): either is enough.
    result.status = verify_signature(manifest, keys)
    problem = signature_problem(manifest, keys)
    if verifier is not None:
        log_problems = check_log_object(proof.get("log"), manifest, verifier)
        if witnesses and not log_problems:
            log_problems = witness_problems(proof["log"]["checkpoint"], witnesses, quorum)
        problems.extend(log_problems)
        result.logged = not log_problems
        if result.logged and result.status is SignatureStatus.UNVERIFIABLE:
            result.status, problem = SignatureStatus.VALID, None
    if problem is not None:
        problems.append(problem.message)
    if manifest.get("hashScheme") != HASH_SCHEME or proof.get("hashScheme") != HASH_SCHEME:
        problems.append(f"hash scheme is not {HASH_SCHEME}")

    # 2. The event, in either line form, re-hashes to the hash it carries.
    try:
        line = read_line(proof.get("eventLine") if isinstance(proof.get("eventLine"), str) else b"")
    except LineError:
        problems.append("eventLine is not an archived event line")
        return result
    result.seq = line.seq
    if not isinstance(line.hash, str) or not HEX64.match(line.hash):
        problems.append("the event has no 64-hex hash")
        return result
    if not line.rehashes:
        problems.append("the event does not re-hash to its hash: its content was changed")

    # 3. The path leads from the event's hash to the signed Merkle root.
    problems.extend(_path_problems(proof, manifest, line.hash))

    # 4. The event belongs where the manifest says its part is.
    lo, hi = manifest.get("startSeq"), manifest.get("endSeq")
    if not (
        is_integer_seq(result.seq)
        and is_integer_seq(lo)
        and is_integer_seq(hi)
        and lo <= result.seq <= hi
    ):
        problems.append(f"seq {result.seq} is outside the part's range {lo}-{hi}")
    at, day = line.event.get("at"), layout.parse_day_or_none(manifest.get("day"))
    if not isinstance(at, dt.datetime) or at.date() != day:
        problems.append(f"the event's at is not on the part's day {manifest.get('day')}")
    return result


def _proof_manifest(proof: Any, result: ProofCheck) -> Mapping[str, Any] | None:
    """The proof's manifest, or None (with the problem noted) if this is no proof."""
    if not isinstance(proof, Mapping):
        result.problems.append("not a proof: expected a JSON object")
        return None
    if (
        proof.get("format") != proof_doc.PROOF_FORMAT
        or proof.get("version") != proof_doc.PROOF_VERSION
    ):
        result.problems.append(
            f"not a {proof_doc.PROOF_FORMAT} version {proof_doc.PROOF_VERSION} document"
        )
        return None
    manifest = proof.get("manifest")
    if not isinstance(manifest, Mapping):
        result.problems.append("the proof carries no manifest")
        return None
    return manifest


def _path_problems(proof: Mapping[str, Any], manifest: Mapping[str, Any], leaf: str) -> list[str]:
    index, size, path = proof.get("leafIndex"), proof.get("treeSize"), proof.get("auditPath")
    if not (is_integer_seq(index) and is_integer_seq(size)):
        return ["leafIndex and treeSize must be integers"]
    if size != manifest.get("eventCount"):
        return [f"treeSize {size} differs from the manifest's eventCount"]
    if not (isinstance(path, list) and all(isinstance(p, str) and HEX64.match(p) for p in path)):
        return ["auditPath must be a list of 64-hex hashes"]
    try:
        root = root_from_path(leaf, index, size, path)
    except ValueError as e:
        return [f"audit path does not fit the tree: {e}"]
    if root != manifest.get("merkleRoot"):
        return ["audit path does not lead to the manifest's merkleRoot"]
    return []

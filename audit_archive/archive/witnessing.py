"""The log as a witness client (SPEC section 8): nothing leaves hot until a quorum of the
witnesses in AUDIT_LOG_WITNESSES has cosigned a checkpoint that covers it.

``signed_log.append`` calls ``witness_head`` under the log's lease, after the checkpoint is
published and before anything is purged. Each witness gets ``POST <prefix>/add-checkpoint``
with the consistency proof from the size it last cosigned; where that size is not known
(or was wrong) the witness's ``409`` answer says it, and the request is sent again once.
What a witness answers counts only if its cosignature verifies with the configured key.
With a quorum, ``log/witnessed/<size>`` is written once (the note, the log's signature
line and the cosignature lines) and becomes ``log/checkpoint``. Otherwise the run fails
naming each witness, its status and its words, the events stay in hot, and any later run
(of any day) submits again: ``needs_witnessing`` is part of ``signed_log.catch_up``.

The size a witness last cosigned is not stored anywhere new: it is read from the latest
witnessed checkpoint that carries that witness's cosignature, a hint that a 409 corrects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from audit_archive.errors import StorageError
from audit_archive.format.addcheckpoint import SIZE_CONTENT_TYPE, encode_request, parse_size
from audit_archive.format.checkpoint import Checkpoint, open_checkpoint
from audit_archive.format.logentry import (
    latest_checkpoint_key,
    size_of_witnessed_key,
    witnessed_key,
    witnessed_prefix,
)
from audit_archive.format.note import NoteError
from audit_archive.format.tlog import consistency_proof, tree_hash
from audit_archive.format.witness import (
    Cosignature,
    WitnessEndpoint,
    add_lines,
    cosignatures,
    response_lines,
)
from audit_archive.progress import Log, quiet
from audit_archive.redact import redact
from audit_archive.stores import witnessclient
from audit_archive.stores.clients import Stores
from audit_archive.stores.conditional import WriteConflict

CONTENT_TYPE = "text/plain; charset=utf-8"
MAX_ATTEMPTS = 3  # the first request, and a resend after each of up to two 409s
TIMEOUT_SECONDS = witnessclient.DEFAULT_TIMEOUT


class WitnessError(StorageError):
    """Too few witnesses cosigned: nothing was deleted; the message names each refusal."""


@dataclass(frozen=True)
class Witnessed:
    """The head a quorum cosigned: its size and the witnesses whose cosignatures it has."""

    size: int
    witnesses: tuple[str, ...]

    def metadata(self) -> dict[str, object]:
        return {"log_cosignatures": len(self.witnesses), "log_witnesses": ", ".join(self.witnesses)}


def enabled(stores: Stores) -> bool:
    return bool(stores.settings.log_witnesses) and stores.settings.log_signer is not None


def _quorum_of(stores: Stores, note: bytes) -> tuple[Checkpoint, list[Cosignature]] | None:
    """The checkpoint and its valid cosignatures by configured witnesses, when the note
    verifies with the log's key and carries a quorum; else None."""
    settings = stores.settings
    assert settings.log_verifier is not None
    try:
        checkpoint = open_checkpoint(note, settings.log_verifier)
        found = cosignatures(note, [w.verifier for w in settings.log_witnesses])
    except NoteError:
        return None
    return (checkpoint, found) if len(found) >= settings.log_witness_quorum else None


def _read(stores: Stores, key: str) -> bytes | None:
    return stores.cold.get_bytes(key) if stores.cold.head(key) is not None else None


def latest_witnessed(stores: Stores) -> tuple[Checkpoint, list[Cosignature], bytes] | None:
    """The largest checkpoint a quorum cosigned: the head when it has a quorum, else the
    largest ``log/witnessed/<size>`` that verifies (with a quorum)."""
    prefix = stores.settings.cold_prefix
    head = _read(stores, latest_checkpoint_key(prefix))
    if head is not None and (got := _quorum_of(stores, head)) is not None:
        return got[0], got[1], head
    keys = [o["Key"] for o in stores.cold.list_keys(witnessed_prefix(prefix))]
    for key in sorted(keys, key=lambda k: size_of_witnessed_key(prefix, k) or -1, reverse=True):
        note = _read(stores, key)
        if note is not None and (got := _quorum_of(stores, note)) is not None:
            return got[0], got[1], note
    return None


def needs_witnessing(stores: Stores) -> bool:
    """With witnesses configured: is the published head not yet cosigned by a quorum?"""
    if not enabled(stores):
        return False
    head = _read(stores, latest_checkpoint_key(stores.settings.cold_prefix))
    return head is not None and _quorum_of(stores, head) is None


def require_witnessed(stores: Stores, day: dt.date, part: int, index: int) -> None:
    """With witnesses configured, a part leaves hot only when a checkpoint a quorum
    cosigned covers its log index."""
    if not enabled(stores):
        return
    got = latest_witnessed(stores)
    if got is None or got[0].size <= index:
        raise WitnessError(
            f"part {part} of {day} is in the signed log but no checkpoint cosigned by "
            f"{stores.settings.log_witness_quorum} witness(es) covers it yet, so nothing of it "
            "was deleted. Re-run any day once the witnesses answer: it submits the log again."
        )


def witness_head(
    stores: Stores,
    hashes: list[bytes],
    check: Callable[[], None],
    log: Log = quiet,
) -> Witnessed | None:
    """Get the published head cosigned by a quorum and make the witnessed note the head;
    WitnessError (nothing deleted) naming every witness that did not cosign."""
    if not enabled(stores):
        return None
    settings = stores.settings
    prefix = settings.cold_prefix
    head_key = latest_checkpoint_key(prefix)
    if stores.cold.head(head_key) is None:
        return None
    res = stores.cold.client.get_object(Bucket=stores.cold.bucket, Key=head_key)
    note, etag = res["Body"].read(), res["ETag"]  # the head replaced below is this one
    checkpoint = open_checkpoint(note, settings.log_verifier)  # type: ignore[arg-type]
    if len(hashes) < checkpoint.size or tree_hash(hashes[: checkpoint.size]) != checkpoint.root:
        raise StorageError("the signed log's leaves do not give the head's root; nothing deleted")
    done = _quorum_of(stores, note)
    if done is not None:
        return Witnessed(checkpoint.size, tuple(c.witness for c in done[1]))
    previous = latest_witnessed(stores)
    plain = _without_cosignatures(note, settings.log_witnesses)
    lines: list[str] = []
    failures: list[str] = []
    check()
    # All witnesses at once: one that is down costs its timeout once, not once per witness
    # after it; answers are taken in the configured order.
    witnesses = settings.log_witnesses
    with ThreadPoolExecutor(max_workers=len(witnesses)) as pool:
        answers = list(
            pool.map(
                lambda w: _submit(
                    w,
                    _hint(previous, w, checkpoint.size),
                    hashes[: checkpoint.size],
                    plain,
                    settings,
                ),
                witnesses,
            )
        )
    check()
    for witness, (line, failure) in zip(witnesses, answers, strict=True):
        if line is not None:
            lines.append(line)
            log(f"witness {witness.name} cosigned the checkpoint of size {checkpoint.size}")
        else:
            failures.append(failure)
    if len(lines) < settings.log_witness_quorum:
        raise WitnessError(
            f"only {len(lines)} of the {settings.log_witness_quorum} witness cosignatures "
            f"needed for the checkpoint of size {checkpoint.size}; nothing was deleted and the "
            "events stay in hot until a later run gets a quorum. " + "; ".join(failures)
        )
    witnessed = add_lines(plain.decode("utf-8"), lines).encode("utf-8")
    check()
    witnessed = _put_witnessed(stores, checkpoint, witnessed)
    check()
    try:  # If-Match: another run's newer head is never overwritten
        stores.cold.put_bytes(head_key, witnessed, CONTENT_TYPE, if_match=etag)
    except WriteConflict:
        raise StorageError(
            f"{head_key} changed while its witnesses cosigned it; nothing was deleted. "
            "Re-run: the next run submits the new head."
        ) from None
    names = tuple(
        c.witness for c in cosignatures(witnessed, [w.verifier for w in settings.log_witnesses])
    )
    log(f"signed log: the checkpoint of size {checkpoint.size} is cosigned by {', '.join(names)}")
    return Witnessed(checkpoint.size, names)


def _without_cosignatures(note: bytes, witnesses: tuple[WitnessEndpoint, ...]) -> bytes:
    """The note as the log signed it (lines by configured witnesses dropped: a stale or
    bad cosignature must not be resubmitted as if it were the log's)."""
    names = {w.name for w in witnesses}
    kept = [
        line
        for line in note.decode("utf-8").split("\n")
        if not any(line.startswith(f"\u2014 {n} ") for n in names)
    ]
    return "\n".join(kept).encode("utf-8")


def _hint(previous, witness: WitnessEndpoint, size: int) -> int:
    """The size this witness last cosigned, as far as the bucket shows (0 if unknown)."""
    if previous is None:
        return 0
    checkpoint, found, _ = previous
    signed = any(c.witness == witness.name for c in found)
    return checkpoint.size if signed and checkpoint.size <= size else 0


def _submit(
    witness: WitnessEndpoint, old: int, hashes: list[bytes], note: bytes, settings
) -> tuple[str | None, str]:
    """One witness: (its verified cosignature line, "") or (None, why not)."""
    size = len(hashes)
    what = f"witness {witness.name} ({redact(witness.url, settings.secrets)})"
    for _ in range(MAX_ATTEMPTS):
        body = encode_request(old, consistency_proof(hashes, old, size) if old else [], note)
        try:
            reply = witnessclient.post_add_checkpoint(witness.url, body, TIMEOUT_SECONDS)
        except witnessclient.WitnessUnreachable as e:
            return None, f"{what} did not answer: {e}"
        if reply.status == 409 and reply.content_type == SIZE_CONTENT_TYPE:
            theirs = parse_size(reply.body)
            if theirs is None:
                return None, f"{what} answered 409 with a malformed size: {_words(reply.body)}"
            if theirs > size:
                return None, (
                    f"{what} has already cosigned size {theirs}, larger than the log's {size}: "
                    "the log was rolled back or forked. Run audit-archive verify"
                )
            if theirs == old:
                return None, f"{what} answered 409 (a different root for size {old}): a fork"
            old = theirs
            continue
        if reply.status != 200:
            return None, f"{what} answered {reply.status}: {_words(reply.body)}"
        try:
            lines = response_lines(reply.body)
            candidate = add_lines(note.decode("utf-8"), lines)
            found = cosignatures(candidate, [witness.verifier])
        except NoteError as e:
            return None, f"{what} answered 200 but not with cosignature lines: {e}"
        if not found:
            return None, f"{what} answered 200 but no cosignature verifies with its key"
        return found[0].line, ""
    return None, f"{what} kept answering 409 (its size changes under the log)"


def _words(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return repr(text[:300]) if text else "(empty body)"


def _put_witnessed(stores: Stores, checkpoint: Checkpoint, note: bytes) -> bytes:
    """Write ``log/witnessed/<size>`` once; one already there with a quorum for the same
    checkpoint is kept (and returned), anything else there is refused."""
    key = witnessed_key(stores.settings.cold_prefix, checkpoint.size)
    existing = _read(stores, key)
    if existing is None:
        stores.cold.put_bytes(key, note, CONTENT_TYPE)
        return note
    got = _quorum_of(stores, existing)
    if got is not None and got[0] == checkpoint:
        return existing
    raise StorageError(
        f"{key} is already in the bucket but is not this checkpoint with a quorum of "
        "cosignatures; nothing was deleted. Run audit-archive verify."
    )

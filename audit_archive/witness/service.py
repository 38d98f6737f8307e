"""The witness's decision on one ``add-checkpoint`` request (C2SP tlog-witness).

In the order the specification gives them: ``400`` for a malformed body, ``404`` for an
unknown origin, ``403`` when no signature verifies with a key of that origin, ``400`` when
old is larger than the checkpoint's size, ``409`` (body ``<size>\\n``, ``text/x.tlog.size``)
when old is not the size last cosigned or when the sizes match and the roots differ,
``422`` when the consistency proof does not verify, else the new checkpoint is stored
durably and ``200`` carries one cosignature line. The check against the stored
checkpoint and the write happen under one lock (``StateFile.update``), so concurrent
requests can never roll the state back and no size ever gets two roots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from audit_archive.format.addcheckpoint import (
    SIZE_CONTENT_TYPE,
    RequestError,
    encode_size,
    parse_request,
)
from audit_archive.format.checkpoint import Checkpoint, CheckpointError, parse_text
from audit_archive.format.note import NoteError, Signer, Verifier, open_note, split_note
from audit_archive.format.tlog import ProofError, verify_consistency
from audit_archive.format.witness import cosign
from audit_archive.stores.witnessstate import Cosigned, StateFile

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT
    reason: str = ""  # why a request was refused, for the witness's log

    @classmethod
    def refuse(cls, status: int, reason: str) -> Answer:
        return cls(status, (reason + "\n").encode("utf-8"), TEXT, reason)


class Witness:
    def __init__(
        self,
        signer: Signer,
        logs: Iterable[Verifier],
        state: StateFile,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs: dict[str, list[Verifier]] = {}
        for v in logs:
            self.logs.setdefault(v.name, []).append(v)
        self.state = state
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            request = parse_request(body)
            text, _ = split_note(request.note)
            checkpoint = parse_text(text)
        except (RequestError, NoteError) as e:
            return Answer.refuse(400, f"malformed request: {e}")
        keys = self.logs.get(checkpoint.origin)
        if not keys:
            return Answer.refuse(404, f"unknown log origin {checkpoint.origin!r}")
        if not any(_signed_by(request.note, key) for key in keys):
            return Answer.refuse(
                403, f"no signature on the checkpoint verifies with a key of {checkpoint.origin!r}"
            )
        if request.old > checkpoint.size:
            return Answer.refuse(
                400, f"old size {request.old} is larger than the checkpoint's {checkpoint.size}"
            )

        def decide(stored: Cosigned | None) -> tuple[Cosigned | None, Answer]:
            return self._decide(stored, request.old, request.proof, checkpoint, text)

        return self.state.update(checkpoint.origin, decide)

    def _decide(
        self,
        stored: Cosigned | None,
        old: int,
        proof: tuple[bytes, ...],
        checkpoint: Checkpoint,
        text: str,
    ) -> tuple[Cosigned | None, Answer]:
        known = stored.size if stored is not None else 0
        if old != known:
            return None, Answer(
                409,
                encode_size(known),
                SIZE_CONTENT_TYPE,
                f"old size {old} is not {known}, the size last cosigned for {checkpoint.origin!r}",
            )
        if stored is not None and checkpoint.size == stored.size:
            if checkpoint.root != stored.root:
                return None, Answer(
                    409,
                    encode_size(known),
                    SIZE_CONTENT_TYPE,
                    f"a second root for size {known} of {checkpoint.origin!r}: a fork",
                )
        elif stored is not None and old > 0:  # from 0, anything is consistent (empty proof)
            try:
                verify_consistency(old, checkpoint.size, proof, stored.root, checkpoint.root)
            except ProofError as e:
                return None, Answer.refuse(
                    422, f"the consistency proof from {old} to {checkpoint.size} fails: {e}"
                )
        line = cosign(self.signer, text, int(self.clock()))
        new = Cosigned(checkpoint.size, checkpoint.root, text)
        return new, Answer(200, line.encode("utf-8"))


def _signed_by(note: bytes, key: Verifier) -> bool:
    try:
        open_note(note, [key])
    except (NoteError, CheckpointError):
        return False
    return True

"""C2SP tlog-checkpoint: the signed statement "the log of <origin> has <size> leaves and
this root" (SPEC section 7).

The text is exactly ``<origin>\\n<size>\\n<base64 root>\\n``; it is published as a signed
note (``note.py``) whose signer key name is the origin. Whoever keeps a copy of a
checkpoint (a witness) can later prove that the log still extends it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from audit_archive.format.note import NoteError, Signer, Verifier, open_note, sign_note
from audit_archive.format.tlog import HASH_SIZE

_SIZE = re.compile(r"^(0|[1-9][0-9]{0,19})$")
MAX_SIZE = (1 << 64) - 1


def parse_tree_size(text: str) -> int | None:
    """A tree size as C2SP writes it (decimal, no leading zeroes, < 2^64), or None."""
    return int(text) if _SIZE.match(text) and int(text) <= MAX_SIZE else None


class CheckpointError(NoteError):
    """A checkpoint that does not parse, is not for this log, or is not validly signed."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @property
    def root_hex(self) -> str:
        return self.root.hex()


def parse_text(text: str) -> Checkpoint:
    """Parse a checkpoint's note text (no signatures); CheckpointError if malformed."""
    if not text.endswith("\n"):
        raise CheckpointError("malformed checkpoint: its text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("malformed checkpoint: origin, size and root lines expected")
    if len(lines) > 3:
        # C2SP allows extension lines; this log writes none, so any is a change.
        raise CheckpointError("malformed checkpoint: unexpected lines after the root")
    origin, size_text, root_text = lines
    if not origin:
        raise CheckpointError("malformed checkpoint: empty origin")
    if parse_tree_size(size_text) is None:
        raise CheckpointError("malformed checkpoint: tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise CheckpointError("malformed checkpoint: root is not base64") from None
    if len(root) != HASH_SIZE or base64.b64encode(root).decode("ascii") != root_text:
        raise CheckpointError("malformed checkpoint: root is not a base64 32-byte hash")
    return Checkpoint(origin, int(size_text), root)


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note of ``checkpoint``; its origin must be the signer key's name."""
    if checkpoint.origin != signer.name:
        raise CheckpointError("a checkpoint's origin must be the signer key's name")
    return sign_note(checkpoint.text, [signer])


def open_checkpoint(note: bytes | str, verifier: Verifier) -> Checkpoint:
    """Parse a signed checkpoint and check it was signed by ``verifier`` for its log.

    Other signatures (a witness's cosignature) are allowed and ignored.
    """
    opened = open_note(note, [verifier])
    checkpoint = parse_text(opened.text)
    if checkpoint.origin != verifier.name:
        raise CheckpointError(
            f"checkpoint is for the log {checkpoint.origin!r}, not {verifier.name!r}"
        )
    return checkpoint

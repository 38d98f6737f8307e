"""The bodies of C2SP tlog-witness ``POST <prefix>/add-checkpoint`` (SPEC section 8).

Request: ``old <size>\\n``, zero to 63 consistency proof lines (one base64 hash each, none
when old is 0), an empty line, then the signed checkpoint note. A ``409`` answer is
``<size>\\n`` with ``Content-Type: text/x.tlog.size``; a ``200`` answer is cosignature lines.
Both sides of the protocol (the log's client and the shipped witness) use these.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from audit_archive.format.checkpoint import parse_tree_size
from audit_archive.format.tlog import HASH_SIZE

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63


class RequestError(ValueError):
    """A malformed add-checkpoint body (the witness answers 400)."""


@dataclass(frozen=True)
class AddCheckpoint:
    old: int
    proof: tuple[bytes, ...]
    note: bytes


def encode_request(old: int, proof: list[bytes], note: bytes) -> bytes:
    lines = [f"old {old}\n"] + [base64.b64encode(h).decode("ascii") + "\n" for h in proof]
    return "".join(lines).encode("ascii") + b"\n" + note


def parse_request(body: bytes) -> AddCheckpoint:
    """Parse a request body; RequestError (400) when it is not one."""
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise RequestError("no empty line between the old size and proof and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise RequestError("the old size and proof lines are not ASCII") from None
    if not lines[0].startswith("old "):
        raise RequestError("the body does not start with an 'old <size>' line")
    old = parse_tree_size(lines[0][4:])
    if old is None:
        raise RequestError("the old size is not a decimal number without leading zeroes")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise RequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            raw = base64.b64decode(line.encode("ascii"), validate=True)
        except ValueError:
            raise RequestError("a consistency proof line is not base64") from None
        if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != line:
            raise RequestError("a consistency proof line is not a base64 32-byte hash")
        proof.append(raw)
    if old == 0 and proof:
        raise RequestError("the consistency proof must be empty when old is 0")
    return AddCheckpoint(old, tuple(proof), note)


def encode_size(size: int) -> bytes:
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int | None:
    """The witness's size in a 409 answer, or None when the body is not ``<size>\\n``."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    return parse_tree_size(text[:-1]) if text.endswith("\n") else None

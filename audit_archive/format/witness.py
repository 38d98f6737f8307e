"""Witness keys and cosignatures (C2SP tlog-cosignature, cosignature/v1 with Ed25519).

A witness remembers the latest checkpoint of a log it cosigned and cosigns a new one only
when a consistency proof shows it extends that one (SPEC section 8). Its key is a signed-note
key of signature type 0x04 (key ID = the first 4 bytes of
``SHA-256(name || 0x0A || 0x04 || public key)``); a cosignature line is
``— <name> base64(key ID || 8-byte big-endian timestamp || Ed25519 signature)``, the
signature over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's text.

Readers ignore signature lines from keys they were not given (the log's own line, other
witnesses). ``audit_archive_tests/format/test_witness_format.py`` checks key IDs and the line
layout against values published by C2SP and transparency-dev/formats.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from audit_archive.format.note import (
    SIGNATURE_PREFIX,
    NoteError,
    Signer,
    Verifier,
    generate_key,
    parse_signer,
    parse_verifier,
    split_note,
)

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1  # C2SP: a timestamp MUST NOT exceed 2^63 - 1
_BLOB_SIZE = 4 + 8 + 64


def parse_witness_verifier(key: str, variable: str) -> Verifier:
    """A witness's verifier key string (type 0x04); ConfigError(variable), key not echoed."""
    return parse_verifier(key, variable, ALG_COSIGNATURE_V1)


def parse_witness_signer(key: str, variable: str) -> Signer:
    """A witness's signer key string (type 0x04); ConfigError(variable), key not echoed."""
    return parse_signer(key, variable, ALG_COSIGNATURE_V1)


def generate_witness_key(name: str) -> Signer:
    """A new witness signer key named ``name``; ``.verifier`` is what logs and auditors pin."""
    return generate_key(name, ALG_COSIGNATURE_V1)


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: the header line, the time line and the note's text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(signer: Signer, text: str, timestamp: int) -> str:
    """One cosignature line (ending in a newline) over the checkpoint ``text``."""
    if signer.alg != ALG_COSIGNATURE_V1:
        raise ValueError("a cosignature needs a witness key (type 0x04)")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("cosignature timestamp out of range")
    blob = struct.pack(">IQ", signer.key_id, timestamp) + signer.sign(
        cosigned_message(text, timestamp)
    )
    return f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True)
class Cosignature:
    """A cosignature that verified with a witness key the reader was given."""

    witness: str  # the witness key's name
    timestamp: int
    line: str  # the signature line, without its newline


def _check(verifier: Verifier, text: str, raw: bytes) -> int | None:
    """The timestamp of a cosignature by ``verifier`` over ``text``, or None."""
    if len(raw) != _BLOB_SIZE:
        return None
    timestamp = struct.unpack(">Q", raw[4:12])[0]
    if timestamp > MAX_TIMESTAMP:
        return None
    ok = verifier.verify(cosigned_message(text, timestamp), raw[12:])
    return timestamp if ok else None


def cosignatures(note: bytes | str, witnesses: Iterable[Verifier]) -> list[Cosignature]:
    """The valid cosignatures in ``note`` by the given witness keys, one per witness.

    Lines by other keys are ignored (C2SP); a line naming a given key whose signature does
    not verify counts for nothing (it is not an error: a reader counts a quorum). The note
    must be well formed (NoteError otherwise); checking the log's own signature is the
    caller's (``checkpoint.open_checkpoint``).
    """
    text, lines = split_note(note)
    known = {(w.name, w.key_id): w for w in witnesses}
    found: dict[tuple[str, int], Cosignature] = {}
    for name, raw, line in lines:
        kid = struct.unpack(">I", raw[:4])[0]
        verifier = known.get((name, kid))
        if verifier is None or (name, kid) in found:
            continue
        timestamp = _check(verifier, text, raw)
        if timestamp is not None:
            found[(name, kid)] = Cosignature(name, timestamp, line)
    return list(found.values())


def add_lines(note: str, lines: Iterable[str]) -> str:
    """``note`` with signature ``lines`` appended (each once, those already there skipped)."""
    if not note.endswith("\n"):
        raise NoteError("malformed note: no final newline")
    present = set(note.split("\n"))
    out = note
    for line in lines:
        line = line.rstrip("\n")
        if line and line not in present:
            present.add(line)
            out += line + "\n"
    split_note(out)  # still a well-formed note
    return out


def response_lines(body: bytes) -> list[str]:
    """The signature lines of a witness's 200 answer; NoteError if it is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the witness's answer is not UTF-8") from None
    if not text.endswith("\n"):
        raise NoteError("the witness's answer does not end with a newline")
    lines = text[:-1].split("\n")
    if not lines or any(not line.startswith(SIGNATURE_PREFIX) for line in lines):
        raise NoteError("the witness's answer is not signature lines")
    return lines


@dataclass(frozen=True)
class WitnessEndpoint:
    """One entry of AUDIT_LOG_WITNESSES: the key its cosignatures must verify with, and
    the submission URL prefix (``<prefix>/add-checkpoint``)."""

    verifier: Verifier
    url: str

    @property
    def name(self) -> str:
        return self.verifier.name


def parse_witness_list(text: str, variable: str) -> tuple[WitnessEndpoint, ...]:
    """``<verifier key> <URL prefix>`` entries separated by commas or newlines (SPEC 8);
    ConfigError(variable) for a bad entry, without echoing it."""
    from audit_archive.errors import ConfigError

    out: list[WitnessEndpoint] = []
    entries = [e.strip() for e in text.replace("\n", ",").split(",") if e.strip()]
    for n, entry in enumerate(entries, 1):
        key, sep, url = entry.partition(" ")
        if (
            not sep
            or url != url.strip()
            or " " in url
            or not url.startswith(("http://", "https://"))
        ):
            raise ConfigError(
                variable,
                f"entry {n} is not '<witness verifier key> <http(s) URL prefix>' (one space)",
            )
        if "@" in url.split("://", 1)[1].split("/", 1)[0]:
            # The client sends no credentials (C2SP tlog-witness defines none): a user or
            # token in the URL would be ignored and could be shown in run logs.
            raise ConfigError(
                variable,
                f"entry {n} has a user or password in its URL; witnesses are reached "
                "without credentials (put an authenticating proxy's URL without them)",
            )
        verifier = parse_witness_verifier(key, f"{variable} (entry {n})")
        if any(w.verifier.name == verifier.name for w in out):
            raise ConfigError(variable, f"entry {n} names the witness {verifier.name} again")
        out.append(WitnessEndpoint(verifier, url.rstrip("/")))
    return tuple(out)

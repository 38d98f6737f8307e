"""C2SP signed notes with Ed25519 keys (signature type 0x01), as Go's sumdb/note writes them.

The signed log (SPEC section 7) publishes checkpoints as signed notes so that anyone
holding only the public **verifier key** can check them offline with standard tooling.
Key strings, key IDs and the note encoding follow https://c2sp.org/signed-note exactly;
``audit_archive_tests/format/test_note.py`` checks them byte for byte against the known-answer
vectors of ``golang.org/x/mod/sumdb/note``.

Key strings are secrets (the signer's) or configuration (the verifier's): every parse
error is a ``ConfigError`` naming the variable or flag it came from, and no message ever
contains any part of the key string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from audit_archive.errors import AuditArchiveError, ConfigError

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # "— ": an em dash and a space open every signature line
MAX_SIGNATURES = 100  # as Go's Open: bounds the work an untrusted note can cause

_SIGNER_SHAPE = "PRIVATE+KEY+<name>+<8 hex key ID>+<base64 of 0x01 and the 32-byte seed>"
_VERIFIER_SHAPE = "<name>+<8 hex key ID>+<base64 of 0x01 and the 32-byte public key>"


class NoteError(AuditArchiveError):
    """A signed note that is malformed, unsigned by a known key, or badly signed."""


def is_valid_name(name: str) -> bool:
    """A key name: non-empty, no Unicode white space, no '+' (C2SP signed-note)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def has_control_characters(name: str) -> bool:
    """Whether a name holds control or invisible format characters (Unicode Cc, Cf, Cs).
    C2SP allows them in a key name, so notes that carry them still open; but a name the
    archive makes itself (keygen) is printed on terminals and in checkpoints an auditor
    reads, where such characters hide or rewrite what is shown."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """First 4 bytes (big-endian) of SHA-256(name || '\\n' || alg || public key): alg 0x01
    for a log's key, 0x04 for a witness's cosignature key (format/witness.py)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return struct.unpack(">I", digest[:4])[0]


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (padding required, no other characters), or None."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    # Reject non-canonical encodings (stray bits in the last character), so one key or
    # signature has exactly one spelling.
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _hex_id(text: str) -> int | None:
    if len(text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
        return None
    return int(text, 16)


@dataclass(frozen=True)
class Verifier:
    """A public verifier key: checks signatures made by its signer key."""

    name: str
    key_id: int
    public_key: bytes  # 32 raw Ed25519 bytes
    alg: int = ALG_ED25519  # 0x04: a witness's key, which signs cosignature/v1 messages

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    @property
    def key_string(self) -> str:
        encoded = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{encoded}"


@dataclass(frozen=True)
class Signer:
    """A private signer key. Its repr never shows the seed."""

    name: str
    key_id: int
    seed: bytes = field(repr=False)  # 32 raw Ed25519 seed bytes: the secret
    alg: int = ALG_ED25519

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, _public_from_seed(self.seed), self.alg)

    @property
    def key_string(self) -> str:
        encoded = base64.b64encode(bytes([self.alg]) + self.seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{encoded}"


def _public_from_seed(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def parse_signer(
    key: str, variable: str = "AUDIT_LOG_SIGNING_KEY", alg: int = ALG_ED25519
) -> Signer:
    """Parse a signer key string; ConfigError(variable) if it is not one (key not echoed)."""
    parts = key.split("+", 4)
    if len(parts) == 3 and not key.startswith("PRIVATE+"):
        raise ConfigError(
            variable,
            "holds a verifier (public) key; the log's signer key has the form " + _SIGNER_SHAPE,
        )
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise ConfigError(variable, "is not a signer key string: expected " + _SIGNER_SHAPE)
    _, _, name, hex_id, encoded = parts
    declared = _hex_id(hex_id)
    raw = _b64decode(encoded)
    if not is_valid_name(name) or declared is None or raw is None:
        raise ConfigError(variable, "is not a signer key string: expected " + _SIGNER_SHAPE)
    if len(raw) != 33 or raw[0] != alg:
        raise ConfigError(
            variable,
            f"is not an Ed25519 signer key (type 0x{alg:02x} and a 32-byte seed expected)",
        )
    seed = raw[1:]
    if key_id(name, _public_from_seed(seed), alg) != declared:
        raise ConfigError(variable, "is damaged: its key ID does not match its key (copy it again)")
    return Signer(name, declared, seed, alg)


def parse_verifier(
    key: str, variable: str = "AUDIT_LOG_VERIFIER_KEY", alg: int = ALG_ED25519
) -> Verifier:
    """Parse a verifier key string; ConfigError(variable) if it is not one (key not echoed)."""
    if key.startswith("PRIVATE+"):
        raise ConfigError(
            variable,
            "holds a signer (private) key: give readers the verifier key, of the form "
            + _VERIFIER_SHAPE
            + " (audit-archive keygen prints both)",
        )
    parts = key.split("+", 2)
    if len(parts) != 3:
        raise ConfigError(variable, "is not a verifier key string: expected " + _VERIFIER_SHAPE)
    name, hex_id, encoded = parts
    declared = _hex_id(hex_id)
    raw = _b64decode(encoded)
    if not is_valid_name(name) or declared is None or not raw:
        raise ConfigError(variable, "is not a verifier key string: expected " + _VERIFIER_SHAPE)
    if raw[0] != alg or len(raw) != 33:
        raise ConfigError(
            variable,
            f"is not an Ed25519 verifier key (type 0x{alg:02x} and a 32-byte key expected)",
        )
    public = raw[1:]
    if key_id(name, public, alg) != declared:
        raise ConfigError(variable, "is damaged: its key ID does not match its key (copy it again)")
    return Verifier(name, declared, public, alg)


def generate_key(name: str, alg: int = ALG_ED25519) -> Signer:
    """A new random signer key named ``name`` (the log's origin, or a witness's name with
    alg 0x04); ``.verifier`` is public."""
    if not is_valid_name(name) or has_control_characters(name):
        raise ValueError(
            f"key name {name!a} must be non-empty, without spaces, control characters or '+'"
        )
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return Signer(name, key_id(name, _public_from_seed(seed), alg), seed, alg)


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    base64: str  # base64(4-byte key ID || signature), as on the line


@dataclass(frozen=True)
class Note:
    """An opened note: its text and the signatures checked (or not) against known keys."""

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...] = ()


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Encode ``text`` with one signature line per signer (text must end with a newline)."""
    signers = list(signers)
    _check_text(text)
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    message = text.encode("utf-8")
    lines = []
    for s in signers:
        if not is_valid_name(s.name):
            raise NoteError("invalid signer name")
        blob = struct.pack(">I", s.key_id) + s.sign(message)
        lines.append(f"{SIGNATURE_PREFIX}{s.name} {base64.b64encode(blob).decode('ascii')}\n")
    return text + "\n" + "".join(lines)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("malformed note: its text must end with a newline")
    for c in text:
        if c != "\n" and ord(c) < 0x20:
            raise NoteError("malformed note: control character in its text")


def split_note(message: bytes | str) -> tuple[str, list[tuple[str, bytes, str]]]:
    """A signed note's text and its signature lines as (name, raw, line), unchecked:
    ``raw`` is the decoded base64 (4-byte key ID first). NoteError if malformed."""
    if isinstance(message, str):
        message = message.encode("utf-8")
    try:
        decoded = message.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed note: not UTF-8") from None
    for c in decoded:
        if c != "\n" and ord(c) < 0x20:
            raise NoteError("malformed note: control character")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: no signature lines, or no final newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("malformed note: too many signatures")
    out = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed note: a signature line must start with an em dash")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64decode(encoded) if encoded else None
        if not is_valid_name(name) or raw is None or len(raw) < 5:
            raise NoteError("malformed note: bad signature line")
        out.append((name, raw, line))
    return text, out


def open_note(message: bytes | str, verifiers: Iterable[Verifier]) -> Note:
    """Parse a signed note and check its signatures against ``verifiers``.

    As Go's ``note.Open``: signatures by unknown keys are kept as unverified (a witness
    may have cosigned); a signature by a known key that does not verify, or a note with
    no signature by any known key, raises NoteError.
    """
    text, lines = split_note(message)
    known: dict[tuple[str, int], list[Verifier]] = {}
    for v in verifiers:
        if v.alg != ALG_ED25519:
            raise ValueError("open_note checks note signatures (0x01) only; see witness.py")
        known.setdefault((v.name, v.key_id), []).append(v)
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    seen_unverified: set[str] = set()
    message_bytes = text.encode("utf-8")
    for name, raw, line in lines:
        kid = struct.unpack(">I", raw[:4])[0]
        sig = Signature(name, kid, line.rpartition(" ")[2])
        candidates = known.get((name, kid))
        if not candidates:
            if line not in seen_unverified:
                seen_unverified.add(line)
                unverified.append(sig)
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {name}+{kid:08x}")
        if (name, kid) in seen:
            continue
        seen.add((name, kid))
        if not candidates[0].verify(message_bytes, raw[4:]):
            raise NoteError(f"invalid signature for key {name}+{kid:08x}")
        verified.append(sig)
    if not verified:
        raise NoteError("note has no verifiable signatures (not signed by the verifier key)")
    return Note(text, tuple(verified), tuple(unverified))

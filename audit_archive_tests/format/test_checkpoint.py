"""C2SP tlog checkpoints: exact text, signature line, and everything a reader refuses."""

from __future__ import annotations

import base64

import pytest

from audit_archive.format.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    parse_text,
    sign_checkpoint,
)
from audit_archive.format.note import NoteError, generate_key, parse_signer, parse_verifier
from audit_archive.format.tlog import EMPTY_ROOT, leaf_hash

ORIGIN = "dezky.example/audit-archive"
SIGNER = generate_key(ORIGIN)
ROOT = leaf_hash(b"a manifest")


def test_text_is_origin_size_and_base64_root() -> None:
    cp = Checkpoint(ORIGIN, 12, ROOT)
    assert cp.text == f"{ORIGIN}\n12\n{base64.b64encode(ROOT).decode()}\n"
    assert parse_text(cp.text) == cp


def test_signed_checkpoint_has_one_em_dash_signature_line() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), SIGNER)
    text, _, sig_block = note.partition("\n\n")
    assert text + "\n" == Checkpoint(ORIGIN, 3, ROOT).text
    lines = sig_block.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"\u2014 {ORIGIN} ")
    blob = base64.b64decode(lines[0].rsplit(" ", 1)[1])
    assert len(blob) == 68 and int.from_bytes(blob[:4], "big") == SIGNER.key_id
    assert open_checkpoint(note, SIGNER.verifier) == Checkpoint(ORIGIN, 3, ROOT)


def test_go_signed_checkpoint_opens() -> None:
    # Signed with Go's PeterNeumann vector key: the same bytes Go's note.Sign writes.
    signer = parse_signer(
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    )
    note = sign_checkpoint(Checkpoint("PeterNeumann", 0, EMPTY_ROOT), signer)
    verifier = parse_verifier("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert open_checkpoint(note, verifier).size == 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"{ORIGIN}\n12\n",
        f"{ORIGIN}\n12\n{base64.b64encode(ROOT).decode()}",
        f"\n12\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n012\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n1e3\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n{1 << 64}\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n12\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n12\n{ROOT.hex()}\n",
        f"{ORIGIN}\n12\n{base64.b64encode(ROOT).decode()}\nextension\n",
    ],
)
def test_malformed_texts_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_text(text)


def test_a_changed_checkpoint_or_another_key_is_refused() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), SIGNER)
    with pytest.raises(NoteError):
        open_checkpoint(note.replace("\n3\n", "\n4\n"), SIGNER.verifier)
    with pytest.raises(NoteError):
        open_checkpoint(note, generate_key(ORIGIN).verifier)
    with pytest.raises(NoteError):
        open_checkpoint(note[:-6] + "AAAA=\n", SIGNER.verifier)


def test_a_checkpoint_of_another_log_is_refused() -> None:
    other = generate_key("other.example/log")
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), other)
    # Signed by a key whose name is not the checkpoint's origin.
    from audit_archive.format.note import sign_note

    note = sign_note(Checkpoint(ORIGIN, 1, ROOT).text, [other])
    with pytest.raises(CheckpointError, match=r"not 'other\.example/log'"):
        open_checkpoint(note, other.verifier)

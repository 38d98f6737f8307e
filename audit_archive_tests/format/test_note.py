"""C2SP signed notes: key strings and signatures byte for byte as Go's sumdb/note.

The vectors are the known answers of golang.org/x/mod/sumdb/note (note_test.go):
the PeterNeumann key pair, its signed note, and the EnochRoot cosignature.
"""

from __future__ import annotations

import pytest

from audit_archive.errors import ConfigError
from audit_archive.format.note import (
    NoteError,
    generate_key,
    key_id,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
)

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oO"
    "TGwnWLox33WWd1RvMc+QQ=\n"
)
SIGNED = TEXT + "\n" + PETER_SIG


def test_the_go_signer_key_parses_and_derives_the_go_verifier_key() -> None:
    signer = parse_signer(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == 0xC74F20A3
    assert signer.key_string == PETER_SKEY
    assert signer.verifier.key_string == PETER_VKEY
    assert parse_verifier(PETER_VKEY) == signer.verifier
    assert key_id("PeterNeumann", signer.verifier.public_key) == 0xC74F20A3


def test_signing_the_go_text_gives_the_go_note_byte_for_byte() -> None:
    # Ed25519 is deterministic, so the same key and text give the same signature.
    assert sign_note(TEXT, [parse_signer(PETER_SKEY)]).encode("utf-8") == SIGNED.encode("utf-8")


def test_the_go_note_opens_with_the_go_verifier_key() -> None:
    note = open_note(SIGNED.encode("utf-8"), [parse_verifier(PETER_VKEY)])
    assert note.text == TEXT
    assert [(s.name, s.key_id) for s in note.signatures] == [("PeterNeumann", 0xC74F20A3)]


def test_a_cosignature_by_an_unknown_key_is_kept_unverified() -> None:
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [parse_verifier(PETER_VKEY)])
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    assert [s.name for s in note.unverified] == ["EnochRoot"]
    both = open_note(
        TEXT + "\n" + PETER_SIG + ENOCH_SIG,
        [parse_verifier(PETER_VKEY), parse_verifier(ENOCH_VKEY)],
    )
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]


def test_a_note_signed_only_by_another_key_does_not_open() -> None:
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_note(TEXT + "\n" + ENOCH_SIG, [parse_verifier(PETER_VKEY)])


@pytest.mark.parametrize(
    "bad",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + SIGNED,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        SIGNED + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_rejected(bad: str) -> None:
    with pytest.raises(NoteError):
        open_note(bad, [parse_verifier(PETER_VKEY)])


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + SIGNED.encode("utf-8"), [parse_verifier(PETER_VKEY)])


def test_any_change_to_text_or_signature_is_rejected() -> None:
    verifier = parse_verifier(PETER_VKEY)
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(SIGNED.replace("cryptography", "cryptograph!"), [verifier])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [verifier])


def _manglings(key: str) -> list[str]:
    """As Go's tests: every proper substring and every single-byte increment."""
    out = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)}
    out.discard(key)
    for i in range(len(key)):
        out.add(key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :])
    return sorted(out)


def test_every_mangled_verifier_key_is_refused() -> None:
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(ConfigError):
            parse_verifier(bad)
    # Go's: wrong key length and unknown algorithm, each with an adjusted key ID.
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(ConfigError):
            parse_verifier(bad)


def test_every_mangled_signer_key_is_refused() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(ConfigError):
            parse_signer(bad)


def test_key_errors_name_the_variable_and_never_echo_the_key() -> None:
    secret_part = PETER_SKEY.rsplit("+", 1)[1]
    damaged = PETER_SKEY[:-3] + "AAA"
    for bad, parse in (
        (damaged, parse_signer),
        (PETER_SKEY, parse_verifier),
        (PETER_VKEY, parse_signer),
        ("nonsense", parse_signer),
    ):
        with pytest.raises(ConfigError) as caught:
            parse(bad, "MY_VARIABLE")
        message = str(caught.value)
        assert message.startswith("MY_VARIABLE: ")
        assert secret_part[:8] not in message and bad not in message
        assert "PeterNeumann" not in message and "c74f20a3" not in message


def test_a_swapped_key_says_which_kind_it_is() -> None:
    with pytest.raises(ConfigError, match="signer \\(private\\) key"):
        parse_verifier(PETER_SKEY, "AUDIT_LOG_VERIFIER_KEY")
    with pytest.raises(ConfigError, match="verifier \\(public\\) key"):
        parse_signer(PETER_VKEY, "AUDIT_LOG_SIGNING_KEY")


def test_a_generated_key_round_trips_and_signs() -> None:
    signer = generate_key("dezky.example/audit-archive")
    assert parse_signer(signer.key_string) == signer
    verifier = parse_verifier(signer.verifier.key_string)
    assert "PRIVATE" not in verifier.key_string and signer.seed.hex() not in repr(signer)
    note = sign_note("hello\n", [signer])
    assert open_note(note, [verifier]).text == "hello\n"
    other = generate_key("dezky.example/audit-archive").verifier
    with pytest.raises(NoteError):
        open_note(note, [other])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        generate_key(name)

"""Witness keys, cosignature/v1 lines and add-checkpoint bodies (SPEC section 8), checked
against values published by implementations we did not write:

- the witness key ``remora.n621.de+da77ade7+BOvN...`` (a real cosignature/v1 key, type 0x04,
  from transparency-dev/formats note/note_cosigv1_test.go TestCoSigV1NewVerifier): its key
  ID must be SHA-256(name || 0x0A || 0x04 || key)[:4] as we compute it;
- the cosignature ``ZGhGuQAAAABm/qTP...`` of the same file's TestCoSigV1Timestamp, whose
  timestamp Go reads as 1727964367, and the example line of C2SP tlog-cosignature, whose
  timestamp is the example's ``time 1679315147``: our layout (key ID, 8-byte big-endian
  timestamp, signature) must read the same numbers;
- the cosigned message of C2SP tlog-cosignature's example, byte for byte.
"""

from __future__ import annotations

import base64
import struct

import pytest

from audit_archive.errors import ConfigError
from audit_archive.format.addcheckpoint import (
    RequestError,
    encode_request,
    encode_size,
    parse_request,
    parse_size,
)
from audit_archive.format.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit_archive.format.note import NoteError, generate_key, key_id, parse_verifier, split_note
from audit_archive.format.witness import (
    ALG_COSIGNATURE_V1,
    add_lines,
    cosign,
    cosignatures,
    cosigned_message,
    generate_witness_key,
    parse_witness_list,
    parse_witness_signer,
    parse_witness_verifier,
)

REMORA = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
GO_COSIGNATURE = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJ"
    "XORmnFBOBA=="
)
C2SP_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)
C2SP_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

LOG = generate_key("test.example/log")
W1 = generate_witness_key("witness.example/w1")
W2 = generate_witness_key("witness.example/w2")
ROOT = bytes(range(32))


def note(size: int = 5, root: bytes = ROOT) -> str:
    return sign_checkpoint(Checkpoint(LOG.name, size, root), LOG)


def test_a_published_witness_key_parses_and_its_key_id_is_ours() -> None:
    v = parse_witness_verifier(REMORA, "KEY")
    assert v.name == "remora.n621.de" and v.key_id == 0xDA77ADE7 and v.alg == ALG_COSIGNATURE_V1
    assert key_id(v.name, v.public_key, ALG_COSIGNATURE_V1) == 0xDA77ADE7
    assert v.key_string == REMORA
    # The same key read as a log key (type 0x01) is refused, naming the variable.
    with pytest.raises(ConfigError, match=r"KEY.*type 0x01"):
        parse_verifier(REMORA, "KEY")


def test_published_cosignatures_have_our_layout() -> None:
    raw = base64.b64decode(GO_COSIGNATURE)
    assert len(raw) == 4 + 8 + 64
    assert struct.unpack(">Q", raw[4:12])[0] == 1727964367  # as Go's CoSigV1Timestamp reads it
    c2sp = base64.b64decode(C2SP_LINE.rsplit(" ", 1)[1])
    assert struct.unpack(">Q", c2sp[4:12])[0] == 1679315147  # the example's "time" line


def test_the_cosigned_message_is_c2sps_example_byte_for_byte() -> None:
    assert cosigned_message(C2SP_TEXT, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_a_cosignature_verifies_with_its_witness_key_only() -> None:
    signed = note()
    text, _ = split_note(signed)
    line = cosign(W1, text, 1700000000)
    assert line.startswith("— witness.example/w1 ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == struct.pack(">I", W1.key_id) and raw[4:12] == struct.pack(">Q", 1700000000)
    both = add_lines(signed, [line])
    found = cosignatures(both, [W1.verifier, W2.verifier])
    assert [(c.witness, c.timestamp) for c in found] == [("witness.example/w1", 1700000000)]
    assert cosignatures(both, [W2.verifier]) == []
    # The log's own checkpoint still opens with the log key, the cosignature ignored.
    assert open_checkpoint(both, LOG.verifier).size == 5


def test_a_cosignature_over_another_checkpoint_or_time_counts_for_nothing() -> None:
    line = cosign(W1, split_note(note(size=4))[0], 1700000000)
    assert cosignatures(add_lines(note(size=5), [line]), [W1.verifier]) == []
    good = cosign(W1, split_note(note())[0], 1700000000)
    blob = bytearray(base64.b64decode(good.split(" ")[2].strip()))
    blob[11] ^= 1  # another timestamp, same signature
    forged = f"— witness.example/w1 {base64.b64encode(bytes(blob)).decode()}\n"
    assert cosignatures(add_lines(note(), [forged]), [W1.verifier]) == []


def test_readers_ignore_lines_of_keys_they_were_not_given() -> None:
    text = split_note(note())[0]
    stranger = generate_witness_key("witness.example/w1")  # same name, another key
    lines = [cosign(stranger, text, 1), cosign(W1, text, 2), cosign(W2, text, 3)]
    found = cosignatures(add_lines(note(), lines), [W1.verifier, W2.verifier])
    assert sorted(c.witness for c in found) == ["witness.example/w1", "witness.example/w2"]


def test_witness_keys_round_trip_and_bad_ones_name_the_variable_without_echoing() -> None:
    assert parse_witness_signer(W1.key_string, "--key") == W1
    assert parse_witness_verifier(W1.verifier.key_string, "X") == W1.verifier
    with pytest.raises(ConfigError, match="--key") as e:
        parse_witness_signer(LOG.key_string, "--key")  # a log key (0x01) is no witness key
    assert LOG.key_string.rsplit("+", 1)[1] not in str(e.value)


def test_the_witness_list_accepts_commas_and_newlines_and_checks_each_entry() -> None:
    text = f"{W1.verifier.key_string} http://a.example/w1/,\n{W2.verifier.key_string} https://b"
    got = parse_witness_list(text, "AUDIT_LOG_WITNESSES")
    assert [(w.name, w.url) for w in got] == [
        ("witness.example/w1", "http://a.example/w1"),
        ("witness.example/w2", "https://b"),
    ]
    for bad in (W1.verifier.key_string, f"{W1.verifier.key_string}  http://x", "junk http://x"):
        with pytest.raises(ConfigError, match="AUDIT_LOG_WITNESSES"):
            parse_witness_list(bad, "AUDIT_LOG_WITNESSES")
    with pytest.raises(ConfigError, match="again"):
        parse_witness_list(
            f"{W1.verifier.key_string} http://a,{W1.verifier.key_string} http://b", "V"
        )


def test_a_witness_url_with_credentials_is_refused_without_echoing_them() -> None:
    for url in ("https://bob:s3cr3t-pw@w.example/x", "https://tok-s3cr3t@w.example"):
        with pytest.raises(ConfigError, match="AUDIT_LOG_WITNESSES") as e:
            parse_witness_list(f"{W1.verifier.key_string} {url}", "AUDIT_LOG_WITNESSES")
        assert "s3cr3t" not in str(e.value)
    # An @ later in the URL (a path or query) is no userinfo.
    got = parse_witness_list(f"{W1.verifier.key_string} https://w.example/a@b", "V")
    assert got[0].url == "https://w.example/a@b"


def test_add_checkpoint_bodies_round_trip_and_malformed_ones_are_refused() -> None:
    signed = note().encode()
    body = encode_request(3, [ROOT, bytes(32)], signed)
    assert body.startswith(b"old 3\n" + base64.b64encode(ROOT) + b"\n")
    parsed = parse_request(body)
    assert (parsed.old, parsed.proof, parsed.note) == (3, (ROOT, bytes(32)), signed)
    assert parse_request(encode_request(0, [], signed)).proof == ()
    for bad in (
        b"old 03\n\n" + signed,
        b"old -1\n\n" + signed,
        b"new 1\n\n" + signed,
        b"old 1\nnot base64\n\n" + signed,
        b"old 0\n" + base64.b64encode(ROOT) + b"\n\n" + signed,  # a proof from 0
        b"old 1\n" + signed,  # no empty line
        b"old 1\n" + b"".join(base64.b64encode(ROOT) + b"\n" for _ in range(64)) + b"\n" + signed,
    ):
        with pytest.raises(RequestError):
            parse_request(bad)
    assert encode_size(42) == b"42\n" and parse_size(b"42\n") == 42
    assert parse_size(b"42") is None and parse_size(b"x\n") is None


def test_add_lines_keeps_the_note_well_formed_and_each_line_once() -> None:
    text = split_note(note())[0]
    line = cosign(W1, text, 9)
    once = add_lines(note(), [line, line])
    assert once.count(line) == 1 and add_lines(once, [line]) == once
    with pytest.raises(NoteError):
        add_lines(note(), ["not a signature line"])

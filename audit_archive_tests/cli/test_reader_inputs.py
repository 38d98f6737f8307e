"""Files and names an auditor or operator hands the CLI are untrusted: ``keygen`` refuses a
name with control characters, ``--trusted-checkpoint`` and proof files are read with a
size cap, and a binary or deeply nested proof file gets one line, never a traceback. Exit
codes follow the CLI's convention: 2 for input it cannot use, 1 for a rejected proof."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit_archive.cli import main
from audit_archive.cli.options import MAX_CHECKPOINT_BYTES, MAX_PROOF_BYTES
from audit_archive_tests.support.harness import LOG_VERIFIER, Harness


def one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize(
    "name", ["log\x1b[2Jexample", "bell\x07.example", "del\x7f.example", "rtl\u202e.example"]
)
def test_keygen_refuses_a_name_with_control_characters(name: str, capsys) -> None:
    assert main(["keygen", name]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "no key is printed"
    err = one_line(captured.err)
    assert "control characters" in err
    assert name not in err, "the raw characters never reach the terminal"


def test_keygen_still_makes_a_key_for_a_plain_name(capsys) -> None:
    assert main(["keygen", "dezky.example/audit-archive"]) == 0
    assert "AUDIT_LOG_VERIFIER_KEY=dezky.example/audit-archive+" in capsys.readouterr().out


def test_a_trusted_checkpoint_file_over_the_cap_is_refused(
    harness: Harness, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("AUDIT_LOG_VERIFIER_KEY", LOG_VERIFIER)
    big = tmp_path / "checkpoint"
    big.write_bytes(b"x" * (MAX_CHECKPOINT_BYTES + 1))
    assert main(["verify", "--trusted-checkpoint", str(big)]) == 2
    err = one_line(capsys.readouterr().err)
    assert f"cannot read {big}: larger than {MAX_CHECKPOINT_BYTES:,} bytes" in err


def check_proof(path: Path, capsys) -> tuple[int, str]:
    code = main(["check-proof", "--verifier-key", LOG_VERIFIER, str(path)])
    captured = capsys.readouterr()
    return code, captured.err


def test_a_proof_file_over_the_cap_is_refused(tmp_path: Path, capsys) -> None:
    big = tmp_path / "proof.json"
    with big.open("wb") as f:
        f.truncate(MAX_PROOF_BYTES + 1)  # sparse: no 64 MiB written
    code, err = check_proof(big, capsys)
    assert code == 2
    assert f"larger than {MAX_PROOF_BYTES:,} bytes" in one_line(err)


def test_a_binary_proof_file_is_one_line_rejection(tmp_path: Path, capsys) -> None:
    binary = tmp_path / "proof.json"
    binary.write_bytes(bytes(range(256)) * 4)
    code, err = check_proof(binary, capsys)
    assert code == 1
    assert "not a proof: the file is not UTF-8 text" in one_line(err)


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_a_deeply_nested_proof_file_is_one_line_rejection(
    depth: int, tmp_path: Path, capsys
) -> None:
    nested = tmp_path / "proof.json"
    nested.write_text("[" * depth + "]" * depth)
    code, err = check_proof(nested, capsys)
    assert code == 1
    assert "not a proof: its JSON is nested too deeply" in one_line(err)


def test_a_proof_shaped_file_with_a_deeply_nested_event_is_one_line(tmp_path: Path, capsys) -> None:
    """Nested just shallow enough to parse, deep enough that checking it would not go."""
    event: object = 1
    for _ in range(900):
        event = {"a": event}
    document = {
        "format": "audit-archive-event-proof",
        "version": 1,
        "manifest": {"day": "2026-01-01", "part": 1, "nested": event},
        "event": event,
    }
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(document))
    code, err = check_proof(path, capsys)
    assert code == 1
    assert "INVALID proof" in one_line(err)

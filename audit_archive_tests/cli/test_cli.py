"""The audit-archive command's surface: one exit code and one message for each outcome,
whether it runs as the installed script (``main``) or under click's ``CliRunner``; a
progress bar only on a terminal and never with ``--quiet``; a reference page
(docs/cli.md) generated from every ``--help``, which the suite refuses when stale.

Exit codes: 0 done, 1 a finding or a refused operation, 2 a usage or configuration
error, 130 interrupted."""

from __future__ import annotations

import io
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit_archive.cli import cli, main, shell
from audit_archive.cli import logkeys as keygen_module
from audit_archive.cli.progress import Progress
from audit_archive_dev import cli_reference
from audit_archive_tests.support.harness import KEY_A, Harness
from audit_archive_tests.support.verify_archive import DUE, FIRST


class Terminal(io.StringIO):
    """Standard error as a terminal would be."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "keys"
    path.write_text(KEY_A + "\n")
    return str(path)


def outcomes(tmp_path: Path, key_file: str) -> list[tuple[list[str], int, str]]:
    """(arguments, exit code, what standard error says): no server is needed for any."""
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not a proof")
    missing = tmp_path / "missing.json"
    return [
        (["verify", "--from", "yesterday"], 2, "Invalid value for '--from'"),
        (
            ["search", "--from", "2026-08-31", "--to", "2026-08-01"],
            2,
            "audit-archive search: --to 2026-08-01 is before --from 2026-08-31\n",
        ),
        (["prove", "--seq", str(2**63)], 2, "does not fit in 8 bytes"),
        (["prove", "--seq", "x"], 2, "'x' is not an integer"),
        (["no-such-command"], 2, "No such command 'no-such-command'"),
        ([], 2, "Usage: audit-archive"),
        (
            ["check-proof", str(missing), "--key-file", key_file],
            2,
            f"audit-archive check-proof: cannot read {missing}: No such file or directory\n",
        ),
        (["check-proof", str(garbage), "--key-file", key_file], 1, "INVALID"),
        (["keygen", "has space"], 2, "audit-archive: configuration error: NAME"),
        (["keygen", "example.org/log"], 0, "Keep the signing key secret"),
    ]


def test_main_and_clirunner_give_the_same_exit_code_and_message(
    tmp_path: Path, key_file: str, capsys
) -> None:
    runner = CliRunner()
    for argv, code, said in outcomes(tmp_path, key_file):
        capsys.readouterr()
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert said in err, (argv, err)
        result = runner.invoke(cli, argv)
        assert result.exit_code == code, (argv, result.output)
        # The same words (click wraps help to the terminal's width, CliRunner's is 80).
        assert result.stderr.split() == err.split(), argv
        assert "Traceback" not in err


def test_refusals_are_one_line_naming_the_sub_command(tmp_path: Path, capsys, monkeypatch) -> None:
    for variable in ("AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEYS_PREVIOUS", "AUDIT_LOG_VERIFIER_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("AUDIT_LOG_SIGNING_KEY", raising=False)
    assert main(["check-proof", str(tmp_path / "p.json")]) == 2  # no key at all
    err = capsys.readouterr().err
    assert err.startswith("audit-archive check-proof: no key: set ") and err.count("\n") == 1


def test_the_installed_script_is_main() -> None:
    [script] = entry_points(group="console_scripts", name="audit-archive")
    assert script.value == "audit_archive.cli:main" and script.load() is main


def test_help_exits_0_on_standard_output(capsys) -> None:
    assert main(["--help"]) == 0
    assert main(["verify", "-h"]) == 0
    out = capsys.readouterr().out
    assert "Usage: audit-archive [OPTIONS] COMMAND" in out and "--trusted-checkpoint" in out


def test_an_unexpected_error_is_one_redacted_line_exit_2(monkeypatch, capsys) -> None:
    def broken(name: str) -> None:
        raise RuntimeError(f"boom near {KEY_A}")

    monkeypatch.setattr(keygen_module, "generate_key", broken)
    assert main(["keygen", "example.org/log"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("audit-archive: error: RuntimeError: boom near ")
    assert KEY_A not in err and "Traceback" not in err
    result = CliRunner().invoke(cli, ["keygen", "example.org/log"])
    assert result.exit_code == 2 and result.stderr == err


def test_an_interrupt_exits_130(monkeypatch) -> None:
    def interrupted(name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(keygen_module, "generate_key", interrupted)
    assert main(["keygen", "example.org/log"]) == shell.INTERRUPTED == 130
    assert CliRunner().invoke(cli, ["keygen", "example.org/log"]).exit_code == 130


# -- progress -----------------------------------------------------------------------------


def test_progress_draws_a_bar_with_its_label_and_figures_on_a_terminal() -> None:
    terminal = Terminal()
    with Progress(stream=terminal, interval=0) as progress:
        progress.update(512, 1024, "0.5/1.0 MiB  1/2 parts", label="reading events")
        drawn = terminal.getvalue()
        assert "reading events  [" in drawn and " 50%" in drawn and "1/2 parts" in drawn
        progress.update(1024, 1024, "1.0/1.0 MiB  2/2 parts", label="reading events")
        progress.echo("a line of output")
    drawn = terminal.getvalue()
    assert "100%" in drawn and "2/2 parts" in drawn
    assert "\r\033[Ka line of output\n" in drawn, "output goes above the bar, on its own line"
    assert drawn.endswith("\n"), "the bar's line is finished when it closes"


def test_progress_is_silent_off_a_terminal_and_with_quiet() -> None:
    for stream, quiet in ((io.StringIO(), False), (Terminal(), True)):
        with Progress(stream=stream, quiet=quiet, interval=0) as progress:
            progress.update(1, 2, "half", label="writing")
            progress.echo("a line of output")
        assert stream.getvalue() == "a line of output\n", (type(stream).__name__, quiet)


def test_a_new_phase_starts_a_new_bar() -> None:
    terminal = Terminal()
    with Progress(stream=terminal, interval=0) as progress:
        progress.update(10, 10, "10/10 events", label="checking")
        progress.update(3, 10, "3/10 events", label="writing")
    drawn = terminal.getvalue()
    assert drawn.index("checking") < drawn.index("writing")
    assert "writing  [" in drawn and " 30%" in drawn


# -- the reference page -------------------------------------------------------------------


def test_docs_cli_md_is_the_help_of_every_sub_command() -> None:
    page = cli_reference.PAGE.read_text()
    assert page == cli_reference.render(), "docs/cli.md is stale: run ./dev docs"
    for name in cli.commands:
        assert f"## `audit-archive {name}`" in page
        assert f"Usage: audit-archive {name} [OPTIONS]" in page


def test_a_stale_reference_is_refused(tmp_path: Path, monkeypatch) -> None:
    page = tmp_path / "cli.md"
    page.write_text(cli_reference.render().replace("--deep", "--shallow"))
    monkeypatch.setattr(cli_reference, "PAGE", page)
    assert cli_reference.main(["--check"]) == 1
    assert cli_reference.main([]) == 0
    assert cli_reference.main(["--check"]) == 0
    assert page.read_text() == cli_reference.render()


# -- progress on every long sub-command, against a real archive -------------------------


def long_commands(archive: Harness) -> dict[str, tuple[list[str], list[str]]]:
    """Each long sub-command with its arguments, and the bars it draws, in order."""
    record = next(r for r in archive.records() if r["eventCount"])
    return {
        "verify": (["verify"], ["reading manifests"]),
        "verify --deep": (["verify", "--deep"], ["reading manifests", "reading events"]),
        "search": (["search", "--from", str(FIRST), "--to", str(DUE[-1])], ["searching"]),
        "restore": (["restore", "--day", record["day"]], ["checking", "writing"]),
        "prove": (["prove", "--seq", str(record["startSeq"])], ["reading the part"]),
    }


def test_every_long_sub_command_draws_progress_only_on_a_terminal(
    archive: Harness, capsys, monkeypatch
) -> None:
    for name, (argv, labels) in long_commands(archive).items():
        assert main(argv) == 0, name
        assert "[" not in capsys.readouterr().err, f"{name}: no bar off a terminal"
        terminal = Terminal()
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stderr", terminal)
            assert main([*argv, "--quiet"]) == 0, name
            assert "[" not in terminal.getvalue(), f"{name}: no bar with --quiet"
            assert main(argv) == 0, name
        drawn = terminal.getvalue()
        at = [drawn.find(f"{label}  [") for label in labels]
        assert -1 not in at and at == sorted(at), (name, drawn)
        assert "100%" in drawn, f"{name}: the bar ends full"

"""docs/cli.md, generated from the ``--help`` of the audit-archive command and of every
sub-command, so the reference cannot drift from the code.

``./dev docs`` (or ``python -m audit_archive_dev.cli_reference``) rewrites the page;
``--check`` exits 1 when the page on disk is stale (the suite checks the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit_archive.cli import cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
WIDTH = 88  # the help text's width in the page, whatever the terminal's

INTRO = """\
# Command-line reference

Generated from `audit-archive --help` and each sub-command's `--help` by
`./dev docs`; do not edit by hand (the suite fails when this page is stale). What the
commands are for, with examples: the README's [command line](../README.md#the-command-line)
section, [verification](verification.md) and [operations](operations.md).

Exit codes, the same for every sub-command: 0 done, 1 a finding or a refused operation
(a `modified` day, an event not archived, a proof that does not hold), 2 a usage or
configuration error (a bad option or variable, an unreachable store: the message names
it), 130 interrupted. Usage errors are click's: `Usage: ...`, then `Error: ...` naming the
option; every other refusal is one line, `audit-archive COMMAND: ...`, on standard error.
The long sub-commands (`verify`, `restore`, `search`, `prove`) draw a progress bar on
standard error when it is a terminal; `--quiet` turns it off.
"""


def context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context the command's ``--help`` runs in, at the page's fixed width."""
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def section(title: str, help_text: str) -> str:
    return f"## `{title}`\n\n```text\n{help_text}\n```\n"


def render() -> str:
    """The whole page: the group's help, then each sub-command's, in the group's order."""
    root = context(cli, "audit-archive", None)
    sections = [INTRO, section("audit-archive", cli.get_help(root))]
    for name, command in cli.commands.items():
        help_text = command.get_help(context(command, name, root))
        sections.append(section(f"audit-archive {name}", help_text))
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run ./dev docs", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

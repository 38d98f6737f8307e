"""The ``audit-archive`` command: a thin shell over the library, on click.

Each sub-command is a click command in its own module (``verify.command``,
``prove.prove_command`` ...); this module assembles them into the ``cli`` group (what
click's ``CliRunner`` invokes) and ``main`` (the installed script's entry point, which
returns the exit code). Exit codes and error messages: shell.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from audit_archive.cli import archives, check, logkeys, prove, restore, search, verify, witness
from audit_archive.cli.shell import INTERRUPTED, PROG, AuditArchiveGroup

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(PROG, cls=AuditArchiveGroup, context_settings=CONTEXT)
def cli() -> None:
    """Verify, inspect and use the audit archive (see README). Exit codes: 0 done, 1 a
    finding or a refused operation, 2 a usage or configuration error."""


COMMANDS = (
    check.command,
    verify.command,
    archives.command,
    restore.command,
    prove.prove_command,
    prove.check_proof_command,
    search.command,
    logkeys.command,
    witness.command,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    try:
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:  # Ctrl-C while click itself was reading the arguments
        return INTERRUPTED
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())

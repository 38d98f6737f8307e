"""The ``audit-archive`` command: a thin shell over the library.

Each sub-command lives in its own module with a ``register(subparsers)`` function that
adds its parser and sets ``handler``; this module only assembles them. Exit codes: 0
success, 1 a finding or a refused operation, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from audit_archive.cli import (
    archives,
    check,
    logkeys,
    prove,
    restore,
    search,
    verify,
    witness,
)
from audit_archive.errors import ConfigError
from audit_archive.redact import redact

COMMAND_MODULES = [check, verify, archives, restore, prove, search, logkeys, witness]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audit-archive",
        description="Verify, inspect and use the audit archive (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help exits 0, a usage error exits 2
        return int(e.code or 0)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as e:
        print(f"audit-archive: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback with a secret in it
        from audit_archive.settings import Settings

        try:
            secrets = Settings.from_env(require_signing_key=False).secrets
        except ConfigError:
            secrets = ()
        print(
            f"audit-archive: error: {redact(f'{type(e).__name__}: {e}', secrets)}", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

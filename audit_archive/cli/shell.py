"""What every sub-command shares: the exit codes, the refusal a command raises, and the
stores it opens and always closes.

Exit codes (unchanged since the argparse CLI): 0 done, 1 a finding or a refused
operation, 2 a usage or configuration error, 130 interrupted. A sub-command returns its
exit code (0 or 1 for a finding such as a ``modified`` day) or raises ``Refused``;
``AuditArchiveGroup`` turns both, a ``ConfigError`` and any unexpected exception (its
message redacted) into click's exits, so the installed script, ``main()`` and click's
``CliRunner`` all see the same codes and messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any

import click

from audit_archive.errors import ConfigError
from audit_archive.redact import redact
from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores, open_stores
from audit_archive.stores.privileges import Access

PROG = "audit-archive"
FINDING = 1  # a finding, or an operation refused because of what the archive holds
USAGE = 2  # a usage or configuration error: nothing was looked at
INTERRUPTED = 130


class Refused(click.ClickException):
    """A sub-command refuses: ``audit-archive COMMAND: message`` on standard error.

    ``exit_code`` is 2 (USAGE) for bad input found before any work, 1 (FINDING) for a
    refusal about the archive's content (no record, a part that does not check out).
    """

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        ctx = click.get_current_context(silent=True)
        self.command = ctx.info_name if ctx is not None and ctx.parent is not None else None

    def show(self, file: IO[Any] | None = None) -> None:
        where = f"{PROG} {self.command}" if self.command else PROG
        click.echo(f"{where}: {self.message}", file=file or click.get_text_stream("stderr"))


class ConfigurationError(click.ClickException):
    """A bad variable or an unreachable store (``ConfigError``): exit 2, naming it."""

    exit_code = USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(
            f"{PROG}: configuration error: {self.message}",
            file=file or click.get_text_stream("stderr"),
        )


class UnexpectedError(click.ClickException):
    """Anything else: one line, exit 2, never a traceback with a secret in it."""

    exit_code = USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"{PROG}: error: {self.message}", file=file or click.get_text_stream("stderr"))


def _known_secrets() -> tuple[str, ...]:
    try:
        return Settings.from_env(require_signing_key=False).secrets
    except ConfigError:
        return ()


class AuditArchiveGroup(click.Group):
    """The command group: maps what a sub-command returns or raises to an exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            code = super().invoke(ctx)
        except ConfigError as e:
            raise ConfigurationError(str(e)) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(INTERRUPTED) from None
        except Exception as e:
            message = redact(f"{type(e).__name__}: {e}", _known_secrets())
            raise UnexpectedError(message) from None
        if code:
            raise click.exceptions.Exit(int(code))
        return 0


@contextlib.contextmanager
def opened_stores(
    settings: Settings, *, access: Access = Access.READ, check: bool = True
) -> Iterator[Stores]:
    """Both stores, checked for ``access`` (a ConfigError naming the variable), closed
    however the command ends: the one open/try/close every sub-command uses."""
    stores = open_stores(settings, check=check, access=access)
    try:
        yield stores
    finally:
        stores.close()

"""Options and value types more than one sub-command takes, defined once."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from audit_archive.audit.prove import check_seq
from audit_archive.cli.shell import Refused
from audit_archive.format import layout

F = TypeVar("F", bound=Callable[..., Any])


class DayType(click.ParamType):
    """A UTC day, ``YYYY-MM-DD`` (a usage error otherwise)."""

    name = "day"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.date):
            return value
        try:
            return layout.parse_day(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class SeqType(click.ParamType):
    """A seq: an integer MongoDB can store (8 bytes)."""

    name = "seq"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(value)
            except ValueError:
                self.fail(f"{value!r} is not an integer", param, ctx)
        try:
            check_seq(number)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        return number


DAY = DayType()
SEQ = SeqType()


def day_range(*, required: bool = False) -> Callable[[F], F]:
    """``--from DAY`` and ``--to DAY`` (inclusive), passed as ``first`` and ``last``."""

    def decorate(f: F) -> F:
        f = click.option(
            "--to", "last", type=DAY, required=required, metavar="DAY",
            help="last day, YYYY-MM-DD (UTC, inclusive)",
        )(f)  # fmt: skip
        return click.option(
            "--from", "first", type=DAY, required=required, metavar="DAY",
            help="first day, YYYY-MM-DD (UTC)",
        )(f)  # fmt: skip

    return decorate


def check_day_range(first: dt.date | None, last: dt.date | None) -> None:
    """A range whose end is before its start is a usage error (exit 2)."""
    if first is not None and last is not None and last < first:
        raise Refused(f"--to {last} is before --from {first}")


quiet_option = click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="no progress bar (it is shown only when standard error is a terminal)",
)


# The most bytes a reader takes from a file an auditor hands it: far above any genuine
# file, far below what would exhaust memory. A checkpoint is a signed note of a few
# hundred bytes (a few KiB with witness cosignatures); a proof carries one event (at
# most 16 MiB of BSON, more as JSON text), its paths and the manifest's bytes.
MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_PROOF_BYTES = 64 * 1024 * 1024


class FileTooLarge(OSError):
    """A file larger than the reader takes (read_capped)."""


def read_capped(path: str, limit: int) -> bytes:
    """The bytes of ``path`` (standard input for ``-``), refusing a file over ``limit``
    bytes without reading more than one byte past it. OSError (FileTooLarge included,
    with ``strerror`` set) when it cannot be had."""
    if path == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(0, f"larger than {limit:,} bytes, the most this file may be")
    return data

"""Options and value types more than one sub-command takes, defined once."""

from __future__ import annotations

import datetime as dt
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

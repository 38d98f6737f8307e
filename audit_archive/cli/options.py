"""Arguments more than one sub-command takes, defined once."""

from __future__ import annotations

import argparse
import datetime as dt

from audit_archive.audit.prove import check_seq
from audit_archive.format import layout


def parse_day_arg(text: str) -> dt.date:
    """argparse type for a UTC day, ``YYYY-MM-DD`` (a usage error otherwise)."""
    try:
        return layout.parse_day(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_day_range(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--from DAY`` and ``--to DAY`` (inclusive), parsed into ``args.first``/``args.last``."""
    parser.add_argument(
        "--from",
        dest="first",
        type=parse_day_arg,
        required=required,
        metavar="DAY",
        help="first day, YYYY-MM-DD (UTC)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        type=parse_day_arg,
        required=required,
        metavar="DAY",
        help="last day, YYYY-MM-DD (UTC, inclusive)",
    )


def day_range_error(first: dt.date | None, last: dt.date | None) -> str | None:
    """The usage error of a range whose end is before its start, else None."""
    if first is not None and last is not None and last < first:
        return f"--to {last} is before --from {first}"
    return None


def seq_arg(text: str) -> int:
    """argparse type for a seq: an integer MongoDB can store (8 bytes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        check_seq(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value

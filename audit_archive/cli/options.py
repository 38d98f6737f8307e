"""Arguments more than one sub-command takes, defined once."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

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

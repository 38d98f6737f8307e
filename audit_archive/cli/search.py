"""``audit-archive search``: stream archived days and print matching events as JSONL."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterable

import click

from audit_archive.audit.search import Filters, SearchStats, search
from audit_archive.cli.options import SEQ, check_day_range, day_range, quiet_option
from audit_archive.cli.progress import Progress
from audit_archive.cli.shell import FINDING, PROG, opened_stores
from audit_archive.settings import Settings


@click.command(
    "search", short_help="print archived events matching filters as JSONL, without restoring"
)
@day_range(required=True)
@click.option("--actor", metavar="ID", help="actor.id equals ID")
@click.option("--action", metavar="A", help="action equals A")
@click.option("--source", metavar="S", help="source equals S")
@click.option("--seq", type=SEQ, metavar="N", help="seq equals N")
@quiet_option
def command(
    first: dt.date,
    last: dt.date,
    actor: str | None,
    action: str | None,
    source: str | None,
    seq: int | None,
    quiet: bool,
) -> int:
    """Stream every archived part of the days --from..--to (inclusive) and print the
    events that match all given filters, one Relaxed Extended JSON line each, in day,
    part and seq order. A summary goes to standard error. Exit 1 if a part failed its
    signature or sha256 check.
    """
    check_day_range(first, last)
    filters = Filters(actor=actor, action=action, source=source, seq=seq)
    stats = SearchStats()
    days = (last - first).days + 1
    # The HMAC key is optional: with the signed log's verifier key, parts it covers count.
    settings = Settings.from_env(require_signing_key=False)
    with opened_stores(settings) as stores, Progress(quiet=quiet) as progress:

        def reading(day: dt.date, counts: SearchStats, done: int | None = None) -> None:
            done = (day - first).days if done is None else done
            info = f"{day}  {counts.matches:,} matching of {counts.events_read:,} events"
            progress.update(done, days, info, label="searching")

        if not write_lines(search(stores, first, last, filters, stats, reading)):
            return 0  # the reader closed the pipe (`search ... | head`): not an error
        reading(last, stats, days)  # every day read
    missing = stats.days_without_record
    click.echo(
        f"{stats.matches} matching of {stats.events_read} events in {stats.parts} parts, "
        f"{stats.days} days"
        + (f"; {missing} days have no record (not archived): {_days(stats)}" if missing else ""),
        err=True,
    )
    for problem in stats.problems:
        click.echo(f"{PROG} search: {problem}", err=True)
    return FINDING if stats.problems else 0


def write_lines(lines: Iterable[bytes]) -> bool:
    """Each line to standard output; False when the reader has had enough."""
    out = sys.stdout.buffer
    try:
        for line in lines:
            out.write(line + b"\n")
        out.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True


def _days(stats: SearchStats) -> str:
    named = ", ".join(map(str, stats.missing_days))
    return named if len(stats.missing_days) == stats.days_without_record else f"{named}, ..."

"""``audit-archive restore``: put one archived day back into MongoDB, after checking it."""

from __future__ import annotations

import click

from audit_archive.audit.restore import (
    DEFAULT_COLLECTION,
    NoRecordError,
    RestoreConflict,
    RestoreRefused,
    restore_day,
)
from audit_archive.cli.options import quiet_option
from audit_archive.cli.progress import Progress
from audit_archive.cli.shell import FINDING, Refused, opened_stores
from audit_archive.format import layout
from audit_archive.settings import Settings


@click.command(
    "restore", short_help="verify one archived day and insert its events into a collection"
)
@click.option("--day", required=True, metavar="YYYY-MM-DD", help="the UTC day to restore")
@click.option(
    "--into",
    default=DEFAULT_COLLECTION,
    metavar="COLLECTION",
    help=f"target collection in the MONGODB_URI database (default {DEFAULT_COLLECTION}; "
    "never the hot events or batches collection)",
)
@quiet_option
def command(day: str, into: str, quiet: bool) -> int:
    """Download the day's parts, check manifest signatures, sha256 and every event's hash,
    then insert the events. Nothing is written unless every check holds. A document
    already in the target with the same _id must be identical (then it is counted as
    already there); a different one refuses the restore. Exit 1: the day has no record,
    failed verification or conflicts with the target.
    """
    settings = Settings.from_env()
    with opened_stores(settings) as stores, Progress(quiet=quiet) as progress:

        def report(phase: str, done: int, total: int) -> None:
            progress.update(done, total, f"{done:,}/{total:,} events", label=phase)

        try:
            parsed = layout.parse_day(day)
            result = restore_day(stores, parsed, into, log=progress.echo, progress=report)
        except ValueError as e:
            raise Refused(str(e)) from None
        except (NoRecordError, RestoreRefused, RestoreConflict) as e:
            raise Refused(str(e), FINDING) from None
    parts = ", ".join(str(p) for p in result.parts)
    click.echo(
        f"restored {result.day}: {result.events} events from part {parts} into "
        f"{result.database}.{result.collection} ({result.inserted} new, "
        f"{result.already_there} already there)"
    )
    return 0

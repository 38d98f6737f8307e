"""``audit-archive restore``: put one archived day back into MongoDB, after checking it."""

from __future__ import annotations

import argparse
import sys

from audit_archive.audit.restore import (
    DEFAULT_COLLECTION,
    NoRecordError,
    RestoreConflict,
    RestoreRefused,
    restore_day,
)
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive.stores.privileges import Access


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore",
        help="verify one archived day and insert its events into a collection",
        description=(
            "Download the day's parts, check manifest signatures, sha256 and every event's "
            "hash, then insert the events. Nothing is written unless every check holds. A "
            "document already in the target with the same _id must be identical (then it "
            "is counted as already there); a different one refuses the restore. Exit 1: "
            "the day has no record, failed verification or conflicts with the target."
        ),
    )
    p.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="the UTC day to restore")
    p.add_argument(
        "--into",
        default=DEFAULT_COLLECTION,
        metavar="COLLECTION",
        help=f"target collection in the MONGODB_URI database (default {DEFAULT_COLLECTION}; "
        "never the hot events or batches collection)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    stores = open_stores(settings, access=Access.READ)
    try:
        result = restore_day(stores, args.day, args.into, log=lambda m: print(m, file=sys.stderr))
    except ValueError as e:
        print(f"audit-archive restore: {e}", file=sys.stderr)
        return 2
    except (NoRecordError, RestoreRefused, RestoreConflict) as e:
        print(f"audit-archive restore: {e}", file=sys.stderr)
        return 1
    finally:
        stores.close()
    parts = ", ".join(str(p) for p in result.parts)
    print(
        f"restored {result.day}: {result.events} events from part {parts} into "
        f"{result.database}.{result.collection} ({result.inserted} new, "
        f"{result.already_there} already there)"
    )
    return 0

"""``audit-archive search``: stream archived days and print matching events as JSONL."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from audit_archive.audit.search import Filters, SearchStats, search
from audit_archive.cli.options import add_day_range, day_range_error, seq_arg
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive.stores.privileges import Access


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="print archived events matching filters as JSONL, without restoring",
        description=(
            "Stream every archived part of the days --from..--to (inclusive) and print the "
            "events that match all given filters, one Relaxed Extended JSON line each, in "
            "day, part and seq order. A summary goes to standard error. Exit 1 if a part "
            "failed its signature or sha256 check."
        ),
    )
    add_day_range(p, required=True)
    p.add_argument("--actor", metavar="ID", help="actor.id equals ID")
    p.add_argument("--action", metavar="A", help="action equals A")
    p.add_argument("--source", metavar="S", help="source equals S")
    p.add_argument("--seq", type=seq_arg, metavar="N", help="seq equals N")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    first, last = args.first, args.last
    error = day_range_error(first, last)
    if error:
        print(f"audit-archive search: {error}", file=sys.stderr)
        return 2
    filters = Filters(actor=args.actor, action=args.action, source=args.source, seq=args.seq)
    stats = SearchStats()
    # The HMAC key is optional: with the signed log's verifier key, parts it covers count.
    stores = open_stores(Settings.from_env(require_signing_key=False), access=Access.READ)
    out = sys.stdout.buffer
    try:
        for line in search(stores, first, last, filters, stats):
            out.write(line + b"\n")
        out.flush()
    except BrokenPipeError:
        # The reader has had enough (`search ... | head`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        stores.close()
    missing = stats.days_without_record
    print(
        f"{stats.matches} matching of {stats.events_read} events in {stats.parts} parts, "
        f"{stats.days} days"
        + (f"; {missing} days have no record (not archived): {_days(stats)}" if missing else ""),
        file=sys.stderr,
    )
    for problem in stats.problems:
        print(f"audit-archive search: {problem}", file=sys.stderr)
    return 1 if stats.problems else 0


def _days(stats: SearchStats) -> str:
    named = ", ".join(stats.missing_days)
    return named if len(stats.missing_days) == stats.days_without_record else f"{named}, ..."

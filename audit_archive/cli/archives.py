"""``audit-archive archives``: the operator's table of archived batches, newest first.

Read from the batch records (what the archiver wrote and confirmed); ``verify`` is the
command that checks them against the bucket.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import pymongo
from pymongo.errors import PyMongoError
from tabulate import tabulate

from audit_archive.cli.options import check_day_range, day_range
from audit_archive.cli.shell import opened_stores
from audit_archive.errors import ConfigError
from audit_archive.format import layout
from audit_archive.settings import Settings
from audit_archive.stores.clients import MONGO_TIMEOUT_MS

COLUMNS = ("day", "part", "archived at", "seq range", "events", "size", "ratio", "manifest")
ALIGN = ("left", "right", "left", "left", "right", "right", "right", "left")  # numbers right


@click.command("archives", short_help="table of archived batches, newest first")
@day_range()
@click.option("--json", "as_json", is_flag=True, help='one JSON document {"batches", "summary"}')
def command(first: dt.date | None, last: dt.date | None, as_json: bool) -> int:
    """One row per archived part, newest first: day, part, archived at, seq range,
    events, compressed size, compression ratio and the first 12 characters of the
    manifest's sha256.
    """
    check_day_range(first, last)
    settings = Settings.from_env(require_signing_key=False)
    # MongoDB only (no S3 needed for the table), under the same short limit as every
    # command's start-up check (not pymongo's 30 s server selection): an unreachable
    # MongoDB is said in ~5 s.
    with opened_stores(settings, check=False) as stores:
        try:
            with pymongo.timeout(MONGO_TIMEOUT_MS / 1000):
                stores.hot.ping()
            records = stores.batches.records()
        except PyMongoError as e:
            raise ConfigError(
                "MONGODB_URI", f"MongoDB is not reachable: {type(e).__name__}"
            ) from None
    rows = batches(records, first, last)
    if as_json:
        click.echo(json.dumps({"batches": rows, "summary": summarize(rows)}, indent=2))
    else:
        click.echo(format_table(rows))
    return 0


def batches(
    records: list[dict[str, Any]], first: dt.date | None = None, last: dt.date | None = None
) -> list[dict[str, Any]]:
    """Records in the day range as plain rows, newest day and part first."""
    lo = layout.format_day(first) if first else ""
    hi = layout.format_day(last) if last else "9999-12-31"
    rows = []
    for r in records:
        day = r.get("day")
        if not isinstance(day, str) or not lo <= day <= hi:
            continue
        compressed = r.get("bytesCompressed") or 0
        uncompressed = r.get("bytesUncompressed") or 0
        archived_at = r.get("archivedAt")
        rows.append(
            {
                "day": day,
                "part": r.get("part"),
                "archivedAt": _iso(archived_at) if isinstance(archived_at, dt.datetime) else None,
                "startSeq": r.get("startSeq"),
                "endSeq": r.get("endSeq"),
                "eventCount": r.get("eventCount") or 0,
                "bytesCompressed": compressed,
                "bytesUncompressed": uncompressed,
                "compressionRatio": round(uncompressed / compressed, 2) if compressed else None,
                "manifestKey": r.get("manifestKey"),
                "manifestSha256": r.get("manifestSha256"),
            }
        )
    rows.sort(key=lambda row: (row["day"], row["part"] or 0), reverse=True)
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    compressed = sum(r["bytesCompressed"] for r in rows)
    uncompressed = sum(r["bytesUncompressed"] for r in rows)
    return {
        "parts": len(rows),
        "days": len({r["day"] for r in rows}),
        "events": sum(r["eventCount"] for r in rows),
        "bytesCompressed": compressed,
        "bytesUncompressed": uncompressed,
        "compressionRatio": round(uncompressed / compressed, 2) if compressed else None,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no archived batches in this range"
    cells = [
        (
            r["day"],
            str(r["part"]),
            (r["archivedAt"] or "-").replace("T", " "),
            f"{r['startSeq']}-{r['endSeq']}" if r["eventCount"] else "-",
            f"{r['eventCount']:,}",
            human_bytes(r["bytesCompressed"]),
            f"{r['compressionRatio']:.1f}x" if r["compressionRatio"] else "-",
            (r["manifestSha256"] or "-")[:12],
        )
        for r in rows
    ]
    table = tabulate(
        cells, headers=COLUMNS, tablefmt="plain", colalign=ALIGN, disable_numparse=True
    )
    s = summarize(rows)
    ratio = f", {s['compressionRatio']:.1f}x" if s["compressionRatio"] else ""
    footer = (
        f"{s['parts']} parts of {s['days']} days: {s['events']:,} events, "
        f"{human_bytes(s['bytesCompressed'])} compressed{ratio}"
    )
    return "\n".join([*(line.rstrip() for line in table.splitlines()), "", footer])


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _iso(value: dt.datetime) -> str:
    return layout.as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")

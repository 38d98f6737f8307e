"""``audit-archive verify``: one status per day, the findings behind it, and a summary.

Exit 0 when every day is ``valid``, ``empty`` or ``not-due``; 1 on any finding; 2 on a
usage or configuration error. ``--deep`` also reads every event (a progress bar on
stderr when it is a terminal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from audit_archive.audit.verify import CLEAN, RangeError, Report, resolve_range, verify
from audit_archive.cli.logkeys import add_verifier_option, verifier
from audit_archive.cli.options import add_day_range
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive.stores.privileges import Access


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="verify the archive like an auditor: a status per day (exit 1 on any finding)",
        description="Check every day from --from to --to (default: ARCHIVE_START_DATE to the "
        "newest due day): manifest signatures, sha256 and sizes against batch records, "
        "objects against records, the chain across parts, days and the hot tier, and due "
        "events left in hot. Statuses: valid, empty, modified, chain-break, unverifiable, "
        "orphan, missing, overdue, not-due.",
    )
    add_day_range(p)
    p.add_argument(
        "--deep",
        action="store_true",
        help="also stream every JSONL.gz: sha256, every event's hash and link, chainEdges, "
        "counts and Merkle root against the content",
    )
    p.add_argument("--json", action="store_true", help='one JSON document {"days", "summary"}')
    add_verifier_option(p)
    p.add_argument(
        "--trusted-checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="a checkpoint of the signed log kept outside the archive (repeatable): any the "
        "log no longer extends is a finding (history rewritten)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # The HMAC key is optional here: with the signed log's verifier key, an auditor
    # holding no secret verifies every part the log covers.
    settings = Settings.from_env(require_signing_key=False)
    log_verifier = verifier(args)
    trusted = []
    for name in args.trusted_checkpoint:
        try:
            trusted.append((name, Path(name).read_bytes()))
        except OSError as e:
            print(f"audit-archive verify: cannot read {name}: {e.strerror}", file=sys.stderr)
            return 2
    if trusted and log_verifier is None:
        print(
            "audit-archive verify: --trusted-checkpoint needs the log's verifier key "
            "(AUDIT_LOG_VERIFIER_KEY or --verifier-key)",
            file=sys.stderr,
        )
        return 2
    try:
        first, last = resolve_range(settings, dt.datetime.now(dt.UTC), args.first, args.last)
    except RangeError as e:
        print(f"audit-archive verify: {e}", file=sys.stderr)
        return 2
    stores = open_stores(settings, access=Access.READ)
    bar = ProgressBar(sys.stderr) if args.deep and sys.stderr.isatty() else None
    try:
        report = verify(
            stores,
            first,
            last,
            deep=args.deep,
            progress=bar,
            log_verifier=log_verifier,
            trusted_checkpoints=trusted,
        )
    finally:
        if bar is not None:
            bar.close()
        stores.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(format_report(report))
    return report.exit_code


def format_report(report: Report) -> str:
    """One line per day (its findings indented below it), then the summary."""
    lines = []
    for day in report.days:
        status = str(day.status)
        detail = ""
        if day.parts:
            detail = f"{day.parts} part{'s' if day.parts != 1 else ''}, {day.events:,} events"
        lines.append(f"{day.day}  {status:<12} {detail}".rstrip())
        for finding in day.findings:
            lines.append(f"            {finding}")
    s = report.summary
    counts = ", ".join(f"{n} {status}" for status, n in s["counts"].items())
    problems = sum(1 for d in report.days if d.status not in CLEAN)
    verdict = "ok" if report.ok else f"{problems} day(s) with findings"
    lines.append("")
    lines.append(
        f"{s['days']} day{'s' if s['days'] != 1 else ''} from {s['from']} to {s['to']} "
        f"({s['mode']}, newest due "
        f"{s['newestDueDay']}): {counts}; {s['findings']} finding(s): {verdict}"
    )
    read = f", {s['bytesRead']:,} bytes of events read" if s["mode"] == "deep" else ""
    lines.append(f"{s['parts']} parts, {s['events']:,} archived events{read} in {s['seconds']}s")
    confirmed = s.get("objectsRead") or {}
    if confirmed.get("objects"):
        why = "; ".join(f"{n} {reason}" for reason, n in confirmed["reasons"].items())
        lines.append(
            f"read {confirmed['objects']} events object(s) ({confirmed['bytes']:,} bytes) that "
            f"the server's checksum could not confirm: {why}"
        )
    lines.append(
        f"tier boundary: highestArchivedSeq {_seq(s['highestArchivedSeq'])}, "
        f"oldestHotSeq {_seq(s['oldestHotSeq'])}"
    )
    if "log" in s:
        log = s["log"]
        lines.append(
            f"signed log {log['origin']}: checkpoint size {_seq(log['checkpointSize'])}, root "
            f"{log['checkpointRoot'] or 'none'}; {log['entries']} entries, {log['covered']} covered"
        )
        for finding in log["findings"]:
            lines.append(f"signed log finding: {finding}")
    for key in s.get("strayObjects", ()):
        lines.append(f"stray object outside any day folder: {key}")
    return "\n".join(lines)


def _seq(value: int | None) -> str:
    return "none" if value is None else str(value)


class ProgressBar:
    """``[#####.....]  45%  12.3/27.1 MiB  3/10 parts`` redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, width: int = 30, interval: float = 0.1) -> None:
        self.stream = stream
        self.width = width
        self.interval = interval
        self._last = 0.0
        self._drawn = False
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, parts_done: int, parts_total: int) -> None:
        now = time.monotonic()
        with self._lock:
            final = parts_done == parts_total
            if not final and now - self._last < self.interval:
                return
            self._last = now
            fraction = done / total if total else 1.0
            filled = int(self.width * min(fraction, 1.0))
            self.stream.write(
                f"\rreading events [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{fraction:4.0%}  {done / 2**20:.1f}/{total / 2**20:.1f} MiB  "
                f"{parts_done}/{parts_total} parts"
            )
            self.stream.flush()
            self._drawn = True

    def close(self) -> None:
        with self._lock:
            if self._drawn:
                self.stream.write("\n")
                self.stream.flush()
                self._drawn = False

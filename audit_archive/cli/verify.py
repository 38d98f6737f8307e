"""``audit-archive verify``: one status per day, the findings behind it, and a summary.

Exit 0 when every day is ``valid``, ``empty`` or ``not-due``; 1 on any finding; 2 on a
usage or configuration error. ``--deep`` also reads every event (a progress bar on
stderr when it is a terminal).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import TextIO

from audit_archive.audit.verify import CLEAN, RangeError, Report, verify
from audit_archive.cli.logkeys import add_verifier_option, add_witness_options, verifier, witnesses
from audit_archive.cli.options import MAX_CHECKPOINT_BYTES, add_day_range, read_capped
from audit_archive.errors import ConfigError
from audit_archive.settings import Settings, keys_from_file
from audit_archive.stores.clients import open_stores
from audit_archive.stores.privileges import Access


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="verify the archive like an auditor: a status per day (exit 1 on any finding)",
        description="Check every day from --from to --to (default: ARCHIVE_START_DATE to the "
        "newest due day, and every day holding a batch record or an object): manifest "
        "signatures, sha256 and sizes against batch records, objects against records (an "
        "events object the server's checksum cannot confirm is read), the chain across "
        "parts, days and the hot tier, and due events left in hot. Statuses: valid, empty, "
        "modified, chain-break, unverifiable, orphan, missing, overdue, in-progress, "
        "not-due, before-start.",
    )
    add_day_range(p)
    p.add_argument(
        "--deep",
        action="store_true",
        help="also stream every JSONL.gz: sha256, every event's hash and link, chainEdges, "
        "counts and Merkle root against the content",
    )
    p.add_argument(
        "--key-file",
        metavar="PATH",
        help="check signatures with the HMAC key(s) in this file, one per line, instead of "
        "AUDIT_SIGNING_KEY and AUDIT_SIGNING_KEYS_PREVIOUS",
    )
    p.add_argument(
        "--json", action="store_true", help='one JSON document {"days", "archive", "summary"}'
    )
    add_verifier_option(p)
    add_witness_options(p)
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
    # An auditor may hold only retired keys (AUDIT_SIGNING_KEYS_PREVIOUS), a key file, or
    # only the signed log's public verifier key: verify signs nothing, so the current key
    # is not required. A current key that is set is still checked like any other variable.
    settings = Settings.from_env(require_signing_key=False)
    keys = keys_from_file(args.key_file) if args.key_file else settings.verification_keys
    log_verifier = verifier(args)
    if not keys and log_verifier is None:
        raise ConfigError(
            "AUDIT_SIGNING_KEY",
            "no key to check signatures with: set AUDIT_SIGNING_KEY or "
            "AUDIT_SIGNING_KEYS_PREVIOUS, pass --key-file, or give the signed log's "
            "verifier key (AUDIT_LOG_VERIFIER_KEY or --verifier-key)",
        )
    trusted = []
    for name in args.trusted_checkpoint:
        try:
            trusted.append((name, read_capped(name, MAX_CHECKPOINT_BYTES)))
        except OSError as e:
            print(f"audit-archive verify: cannot read {name}: {e.strerror}", file=sys.stderr)
            return 2
    witness_keys, quorum = witnesses(args)
    if witness_keys and log_verifier is None:
        raise ConfigError("--witness", "needs the log's verifier key (AUDIT_LOG_VERIFIER_KEY)")
    if trusted and log_verifier is None:
        print(
            "audit-archive verify: --trusted-checkpoint needs the log's verifier key "
            "(AUDIT_LOG_VERIFIER_KEY or --verifier-key)",
            file=sys.stderr,
        )
        return 2
    stores = open_stores(settings, access=Access.READ)
    bar = ProgressBar(sys.stderr) if args.deep and sys.stderr.isatty() else None
    try:
        report = verify(
            stores,
            args.first,
            args.last,
            deep=args.deep,
            keys=keys,
            progress=bar,
            log_verifier=log_verifier,
            trusted_checkpoints=trusted,
            **({"witnesses": witness_keys, "quorum": quorum} if witness_keys else {}),
        )
    except RangeError as e:
        print(f"audit-archive verify: {e}", file=sys.stderr)
        return 2
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
        detail = ""
        if day.parts:
            detail = f"{day.parts} part{'s' if day.parts != 1 else ''}, {day.events:,} events"
        lines.append(f"{day.day}  {day.status!s:<12} {detail}".rstrip())
        if day.in_progress is not None:
            lines.append(f"            in progress: {day.in_progress}")
        for finding in day.findings:
            lines.append(f"            {finding}")
    for finding in report.archive:
        lines.append(f"archive: {finding}")
    s = report.summary
    if s.get("note"):
        return "\n".join([*lines, s["note"]])
    lines.append("")
    lines.append(_verdict_line(report))
    read = f", {s['bytesRead']:,} bytes of events read" if s["mode"] == "deep" else ""
    lines.append(f"{s['parts']} parts, {s['events']:,} archived events{read} in {s['seconds']}s")
    confirmed = s.get("objectsRead") or {}
    if confirmed.get("objects"):
        why = "; ".join(f"{n} {reason}" for reason, n in confirmed["reasons"].items())
        lines.append(
            f"read {confirmed['objects']} events object(s) ({confirmed['bytes']:,} bytes) that "
            f"the server's checksum could not confirm: {why}"
        )
    if s.get("inProgress"):
        lines.append(
            f"in progress (a run holds the lease, not a finding): {', '.join(s['inProgress'])}"
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
        if "witnessedSize" in log:
            who = ", ".join(log["witnesses"]) or "no quorum"
            lines.append(f"witnessed: {log['witnessedSize']} entries cosigned by {who}")
        for finding in log["findings"]:
            lines.append(f"signed log finding: {finding}")
    for key in s.get("strayObjects", ()):
        lines.append(f"stray object outside any day folder: {key}")
    return "\n".join(lines)


def _verdict_line(report: Report) -> str:
    s = report.summary
    counts = ", ".join(f"{n} {status}" for status, n in s["counts"].items())
    problems = sum(1 for d in report.days if d.status not in CLEAN)
    verdict = "ok" if report.ok else f"{problems} day(s) with findings"
    if report.archive:
        verdict += f", {len(report.archive)} finding(s) of the whole archive"
    to = s["to"]
    if s.get("requestedTo"):
        to += f" (--to {s['requestedTo']}: no later day can hold anything)"
    return (
        f"{s['days']} day{'s' if s['days'] != 1 else ''} from {s['from']} to {to} "
        f"({s['mode']}, newest due {s['newestDueDay']}): {counts}; {s['findings']} "
        f"finding(s): {verdict}"
    )


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

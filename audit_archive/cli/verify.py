"""``audit-archive verify``: one status per day, the findings behind it, and a summary.

Exit 0 when every day is ``valid``, ``empty`` or ``not-due``; 1 on any finding; 2 on a
usage or configuration error. ``--deep`` also reads every event. Progress (manifests
read, then --deep's events) on standard error when it is a terminal (``--quiet``: none).
"""

from __future__ import annotations

import datetime as dt
import json
import os

import click

from audit_archive.audit.verify import CLEAN, RangeError, Report, verify
from audit_archive.cli.logkeys import verifier, verifier_key_option, witness_options, witnesses
from audit_archive.cli.options import MAX_CHECKPOINT_BYTES, day_range, quiet_option, read_capped
from audit_archive.cli.progress import Progress, mib
from audit_archive.cli.shell import Refused, opened_stores
from audit_archive.errors import ConfigError
from audit_archive.settings import Settings, keys_from_file


@click.command(
    "verify",
    short_help="verify the archive like an auditor: a status per day (exit 1 on any finding)",
)
@day_range()
@click.option(
    "--deep",
    is_flag=True,
    help="also stream every JSONL.gz: sha256, every event's hash and link, chainEdges, "
    "counts and Merkle root against the content",
)
@click.option(
    "--key-file",
    metavar="PATH",
    help="check signatures with the HMAC key(s) in this file, one per line, instead of "
    "AUDIT_SIGNING_KEY and AUDIT_SIGNING_KEYS_PREVIOUS",
)
@click.option(
    "--json", "as_json", is_flag=True, help='one JSON document {"days", "archive", "summary"}'
)
@verifier_key_option
@witness_options
@click.option(
    "--trusted-checkpoint",
    "trusted_checkpoints",
    multiple=True,
    metavar="FILE",
    help="a checkpoint of the signed log kept outside the archive (repeatable): any the "
    "log no longer extends is a finding (history rewritten)",
)
@quiet_option
def command(
    first: dt.date | None,
    last: dt.date | None,
    deep: bool,
    key_file: str | None,
    as_json: bool,
    verifier_key: str | None,
    witness_keys: tuple[str, ...],
    quorum: int | None,
    trusted_checkpoints: tuple[str, ...],
    quiet: bool,
) -> int:
    """Check every day from --from to --to (default: ARCHIVE_START_DATE, or the archive's
    first day when it is not set, to the newest due day, and every day holding a batch
    record or an object): manifest signatures, sha256
    and sizes against batch records, objects against records (an events object the
    server's checksum cannot confirm is read), the chain across parts, days and the hot
    tier, and due events left in hot. Statuses: valid, empty, modified, chain-break,
    unverifiable, orphan, missing, overdue, in-progress, not-due, before-start.
    """
    # An auditor may hold only retired keys (AUDIT_SIGNING_KEYS_PREVIOUS), a key file, or
    # only the signed log's public verifier key: verify signs nothing, so the current key
    # is not required. A current key that is set is still checked like any other variable.
    settings = Settings.from_env(require_signing_key=False)
    keys = keys_from_file(key_file) if key_file else settings.verification_keys
    log_verifier = verifier(verifier_key)
    if not keys and log_verifier is None:
        raise ConfigError(
            "AUDIT_SIGNING_KEY",
            "no key to check signatures with: set AUDIT_SIGNING_KEY or "
            "AUDIT_SIGNING_KEYS_PREVIOUS, pass --key-file, or give the signed log's "
            "verifier key (AUDIT_LOG_VERIFIER_KEY or --verifier-key)",
        )
    trusted = [(name, read_checkpoint(name)) for name in trusted_checkpoints]
    witness_verifiers, wanted = witnesses(witness_keys, quorum)
    if witness_verifiers and log_verifier is None:
        raise ConfigError("--witness", "needs the log's verifier key (AUDIT_LOG_VERIFIER_KEY)")
    if trusted and log_verifier is None:
        raise Refused(
            "--trusted-checkpoint needs the log's verifier key "
            "(AUDIT_LOG_VERIFIER_KEY or --verifier-key)"
        )
    with opened_stores(settings) as stores, Progress(quiet=quiet) as progress:

        def manifests(done: int, total: int) -> None:
            progress.update(done, total, f"{done}/{total} parts", label="reading manifests")

        def reading(done: int, total: int, parts_done: int, parts_total: int) -> None:
            info = f"{mib(done, total)}  {parts_done}/{parts_total} parts"
            progress.update(done, total, info, label="reading events")

        try:
            report = verify(
                stores,
                first,
                last,
                deep=deep,
                keys=keys,
                progress=reading if deep else None,
                manifest_progress=manifests,
                log_verifier=log_verifier,
                trusted_checkpoints=trusted,
                # An auditor does not know the deployment's ARCHIVE_START_DATE: without it
                # the days start at the archive's own first day (the summary says which, why).
                start_from_archive=not os.environ.get("ARCHIVE_START_DATE", "").strip(),
                **({"witnesses": witness_verifiers, "quorum": wanted} if witness_verifiers else {}),
            )
        except RangeError as e:
            raise Refused(str(e)) from None
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        click.echo(format_report(report))
    return report.exit_code


def read_checkpoint(name: str) -> bytes:
    try:
        return read_capped(name, MAX_CHECKPOINT_BYTES)
    except OSError as e:
        raise Refused(f"cannot read {name}: {e.strerror}") from None


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
    if s.get("rangeReason"):
        lines.append(f"checked {s['from']} to {s['to']}, {s['rangeReason']}")
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

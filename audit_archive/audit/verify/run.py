"""``verify()``: the whole verification as named steps, each in its own module."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audit_archive.audit.log_check import LogCheck, check_log
from audit_archive.audit.verify.chain_step import (
    chain_input,
    charge_breaks,
    highest_archived_seq,
    recheck,
    records_by_day,
    walk_chain,
)
from audit_archive.audit.verify.chain_walk import Hole
from audit_archive.audit.verify.checks import check_part, checksums_kept, confirm_by_reading
from audit_archive.audit.verify.content import ContentRead, Progress, read_contents
from audit_archive.audit.verify.hot_checks import add_overdue, dayless_events, mark_in_progress
from audit_archive.audit.verify.parts import (
    Listing,
    ManifestProgress,
    Part,
    fetch_parts,
    gather_parts,
    list_day_folders,
)
from audit_archive.audit.verify.report import DayReport, Finding, Report, Status
from audit_archive.audit.verify.span import Span, resolve_span
from audit_archive.format import layout
from audit_archive.format.manifest import SignatureStatus
from audit_archive.format.note import Verifier
from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores

MANIFEST_WORKERS = 8  # botocore keeps 10 pooled connections per client
DEEP_WORKERS = 3  # each holds one 1 MiB chunk and one line: memory stays flat


@dataclass
class Inventory:
    listing: Listing
    parts_by_day: dict[dt.date, list[Part]]
    strays: dict[dt.date, list[Finding]]

    @property
    def parts(self) -> list[Part]:
        return [p for parts in self.parts_by_day.values() for p in parts]


def verify(
    stores: Stores,
    first: dt.date | None = None,
    last: dt.date | None = None,
    *,
    now: dt.datetime | None = None,
    deep: bool = False,
    keys: Sequence[str] | None = None,
    workers: int = MANIFEST_WORKERS,
    deep_workers: int = DEEP_WORKERS,
    progress: Progress | None = None,
    manifest_progress: ManifestProgress | None = None,
    log_verifier: Verifier | None = None,
    trusted_checkpoints: Sequence[tuple[str, bytes]] = (),
    witnesses: Sequence[Verifier] | None = None,
    quorum: int | None = None,
    start_from_archive: bool = False,
) -> Report:
    """Verify every day in [first, last] (default: every day from ARCHIVE_START_DATE to
    the newest due day, and every day holding a batch record or an object). ``keys``:
    the HMAC keys to check signatures with (default: the settings' current and previous
    keys). ``log_verifier`` (default: the settings'): the signed log's public key; a part
    the log covers is authenticated without any HMAC key (SPEC section 7), and
    ``trusted_checkpoints`` kept elsewhere expose history rewritten since.
    ``start_from_archive``: the days start at the archive's own first day (its earliest
    batch record or object) instead of ARCHIVE_START_DATE, for a reader who does not
    know the deployment's setting (an auditor). Raises RangeError for a range that holds
    nothing to verify. ``witnesses`` and ``quorum`` (default: AUDIT_LOG_WITNESSES and its
    quorum): every part must be covered by a checkpoint that many of those witnesses
    cosigned (SPEC section 8). ``progress``
    hears how far --deep's reading is, ``manifest_progress`` how many manifests are read."""
    started = time.monotonic()
    settings = stores.settings
    now = now or dt.datetime.now(dt.UTC)
    records = records_by_day(stores)
    listing = list_day_folders(stores, first, last)
    newest_due = layout.newest_due_day(now, settings.retention_days)
    start, why = _start(
        settings.start_date, start_from_archive, first, records, listing, newest_due
    )
    span = _span(start, settings.retention_days, now, first, last, records, listing)
    if span is None:
        return _nothing_to_verify(start, settings.retention_days, now, started, why)
    inventory = _inventory(span, settings.cold_prefix, records, listing)
    parts = inventory.parts
    keys = settings.verification_keys if keys is None else tuple(keys)
    fetch_parts(stores, parts, keys, deep, workers, manifest_progress)
    log = _check_log(
        stores,
        log_verifier or settings.log_verifier,
        records,
        trusted_checkpoints,
        _witnessing(settings, witnesses, quorum),
    )
    if log is not None:
        _authenticate_logged(parts, log)
    kept = checksums_kept(parts)
    for p in parts:
        check_part(p, deep, kept)
    confirmed = confirm_by_reading(stores, parts, deep_workers)
    reports, day_holes = _day_reports(span, inventory)
    walk = walk_chain(stores, chain_input(span, parts, records, day_holes))
    content = ContentRead()
    if deep:
        content = read_contents(stores, parts, deep_workers, progress, walk.duplicates)
    breaks = recheck(stores, span, parts, records, day_holes, walk, content.gaps)
    charge_breaks(reports, [*breaks, *content.duplicates], parts)
    for p in parts:
        reports[p.day].findings += p.findings
    add_overdue(stores, span, reports)
    mark_in_progress(stores, reports, now)
    report = Report([reports[d] for d in span.days], {}, dayless_events(stores))
    if log is not None:
        _add_log_findings(report, reports, log)
    report.summary = _summary(stores, span, report, inventory, records, deep, started)
    report.summary |= {"rangeReason": why, **({"log": log.as_dict()} if log is not None else {})}
    report.summary |= {"bytesRead": content.bytes + confirmed["bytes"], "objectsRead": confirmed}
    report.summary["ok"] = report.ok
    return report


def _witnessing(
    settings: Settings, witnesses: Sequence[Verifier] | None, quorum: int | None
) -> tuple[Sequence[Verifier], int]:
    """The witnesses whose cosignatures every part needs, and how many: the caller's, or
    else AUDIT_LOG_WITNESSES and its quorum (default: all given)."""
    if witnesses is None:
        witnesses = [w.verifier for w in settings.log_witnesses]
        quorum = settings.log_witness_quorum if quorum is None else quorum
    return witnesses, len(witnesses) if quorum is None else quorum


def _check_log(
    stores: Stores,
    verifier: Verifier | None,
    records: dict[dt.date, list[dict[str, Any]]],
    trusted: Sequence[tuple[str, bytes]],
    witnessing: tuple[Sequence[Verifier], int] = ((), 0),
) -> LogCheck | None:
    if verifier is None:
        return None
    every_record = [r for recs in records.values() for r in recs]
    witnesses, quorum = witnessing
    return check_log(stores, verifier, every_record, trusted, MANIFEST_WORKERS, witnesses, quorum)


def _authenticate_logged(parts: list[Part], log: LogCheck) -> None:
    """A manifest no known HMAC key can check, but whose exact bytes a valid checkpoint
    covers, was published by the archive: authenticated (SPEC section 7, readers)."""
    for p in parts:
        if (
            p.signature is SignatureStatus.UNVERIFIABLE
            and log.authenticated.get((p.day, p.part)) == p.manifest_sha256
        ):
            p.signature = SignatureStatus.VALID


def _add_log_findings(report: Report, reports: dict[dt.date, DayReport], log: LogCheck) -> None:
    """Whole-log findings (a bad or inconsistent checkpoint, gaps) are the archive's; a
    part's (not logged, bytes differ from its leaf) go to its day."""
    report.archive += [Finding(Status.MODIFIED, f"signed log: {m}") for m in log.findings]
    for (day, part), found in log.part_findings.items():
        if day in reports:
            for kind, message in found:
                # A logged part's manifest gone is never a moment of a run in progress.
                lasting = Status(kind) is Status.MISSING
                reports[day].add(
                    Finding(Status(kind), f"signed log: {message}", part, lasting=lasting)
                )


def _span(
    start: dt.date,
    retention_days: int,
    now: dt.datetime,
    first: dt.date | None,
    last: dt.date | None,
    records: dict[dt.date, list[dict[str, Any]]],
    listing: Listing,
) -> Span | None:
    lo, hi = first or dt.date.min, last or dt.date.max
    held = {d for d in set(listing.by_day) | set(records) if lo <= d <= hi}
    newest_due = layout.newest_due_day(now, retention_days)
    return resolve_span(start, newest_due, now.astimezone(dt.UTC).date(), first, last, held)


def _start(
    configured: dt.date,
    from_archive: bool,
    first: dt.date | None,
    records: dict[dt.date, list[dict[str, Any]]],
    listing: Listing,
    newest_due: dt.date,
) -> tuple[dt.date, str]:
    """The first partition day, and why the checked range starts where it does."""
    if first is not None:
        return configured, f"from --from {first}"
    if not from_archive:
        return configured, f"from ARCHIVE_START_DATE ({configured})"
    held = sorted(set(records) | set(listing.by_day))
    if held:
        return held[0], (
            f"from {held[0]}, the archive's first day (its earliest batch record or "
            "object): ARCHIVE_START_DATE is not set"
        )
    # Nothing held and no setting: no day can be told missing (the span is empty).
    return newest_due + dt.timedelta(days=1), NOTHING_HELD


def _inventory(
    span: Span, prefix: str, records: dict[dt.date, list[dict[str, Any]]], listing: Listing
) -> Inventory:
    parts_by_day, strays = gather_parts(prefix, span.days, records, listing.by_day)
    return Inventory(listing, parts_by_day, strays)


def _day_reports(span: Span, inventory: Inventory) -> tuple[dict[dt.date, DayReport], list[Hole]]:
    """A report per day with what it holds, its stray objects, and missing days and
    parts (each a hole in what the chain walk can see)."""
    reports: dict[dt.date, DayReport] = {}
    holes: list[Hole] = []
    for day in span.days:
        parts = inventory.parts_by_day[day]
        report = DayReport(day, due=span.is_due(day), partition=day >= span.start)
        report.findings += inventory.strays.get(day, [])
        report.parts = len(parts)
        report.events = sum(p.event_count for p in parts)
        if report.due and not parts and not inventory.listing.by_day.get(day):
            report.add(
                Finding(Status.MISSING, "a due day with neither a batch record nor any object")
            )
            holes.append(Hole(day))
        numbers = [p.part for p in parts]
        for n in sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers)):
            report.add(
                Finding(
                    Status.MISSING,
                    f"part {n} is neither recorded nor in the bucket, yet part {max(numbers)} is",
                    n,
                )
            )
            holes.append(Hole(day))
        reports[day] = report
    return reports, holes


def _summary(
    stores: Stores,
    span: Span,
    report: Report,
    inventory: Inventory,
    records: dict[dt.date, list[dict[str, Any]]],
    deep: bool,
    started: float,
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for d in report.days:
        counts[str(d.status)] = counts.get(str(d.status), 0) + 1
    summary: dict[str, Any] = {
        "from": layout.format_day(span.first),
        "to": layout.format_day(span.last),
        "newestDueDay": layout.format_day(span.newest_due),
        "mode": "deep" if deep else "manifests",
        "days": len(report.days),
        "counts": counts,
        "findings": sum(len(d.findings) for d in report.days) + len(report.archive),
        "parts": len(inventory.parts),
        "events": sum(d.events for d in report.days),
        "oldestHotSeq": stores.events.oldest_hot_seq(),
        "highestArchivedSeq": highest_archived_seq(inventory.parts, records),
        "inProgress": [layout.format_day(d.day) for d in report.days if d.in_progress is not None],
        "seconds": round(time.monotonic() - started, 3),
    }
    if span.requested_last is not None:
        summary["requestedTo"] = layout.format_day(span.requested_last)
    if inventory.listing.stray:
        summary["strayObjects"] = inventory.listing.stray
    return summary


NOTHING_HELD = (
    "nothing to verify: the archive holds no batch record and no object, and "
    "ARCHIVE_START_DATE is not set, so no day can be told missing"
)


def _nothing_to_verify(
    start: dt.date, retention_days: int, now: dt.datetime, started: float, why: str
) -> Report:
    newest_due = layout.newest_due_day(now, retention_days)
    return Report(
        [],
        {
            "from": None,
            "to": None,
            "newestDueDay": layout.format_day(newest_due),
            "mode": "manifests",
            "days": 0,
            "counts": {},
            "findings": 0,
            "parts": 0,
            "events": 0,
            "bytesRead": 0,
            "objectsRead": {"objects": 0, "bytes": 0, "reasons": {}},
            "oldestHotSeq": None,
            "highestArchivedSeq": None,
            "inProgress": [],
            "seconds": round(time.monotonic() - started, 3),
            "ok": True,
            "note": why
            if why == NOTHING_HELD
            else f"nothing to verify: no day is due yet (the newest due day, {newest_due}, "
            f"is before ARCHIVE_START_DATE, {start}) and nothing is archived",
        },
    )

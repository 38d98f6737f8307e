"""What verification asks the hot tier besides the chain's links: due events still in
hot, events of no day, and the days a live run is archiving right now."""

from __future__ import annotations

import datetime as dt

from audit_archive.audit.verify.report import DayReport, Finding, Status
from audit_archive.audit.verify.span import Span
from audit_archive.format import layout
from audit_archive.stores.clients import Stores

MALFORMED_LISTING_MAX = 10_000  # overdue events read to name the malformed among them


def add_overdue(stores: Stores, span: Span, reports: dict[str, DayReport]) -> None:
    """Chained events of a due day still in hot; the malformed among them named."""
    first, last = max(span.first, span.start), min(span.last, span.newest_due)
    if first > last:
        return
    start, end = layout.day_bounds(first)[0], layout.day_bounds(last)[1]
    for day, count in stores.hot.chained_days(start, end):
        report = reports.get(layout.format_day(day))
        if report is None:
            continue
        # Malformed events (malformed.py) stay in hot for good: name them. Listing reads
        # the day's hot events, so only for a day that is mostly archived.
        malformed = stores.hot.malformed_day_events(day) if count <= MALFORMED_LISTING_MAX else []
        named = f"; malformed, never archived: {'; '.join(malformed)}" if malformed else ""
        report.add(
            Finding(
                Status.OVERDUE,
                f"{count} chained event(s) of this due day are still in hot: re-run the day "
                f"to archive them{named}",
            )
        )


def dayless_events(stores: Stores) -> list[Finding]:
    """Chained events whose ``at`` is missing or not a date belong to no day: no run
    archives them and no day's status shows them, so they are findings of the archive."""
    named = stores.hot.dayless_chained()
    if not named:
        return []
    return [
        Finding(
            Status.OVERDUE,
            f"{len(named)} chained event(s) in hot belong to no day (their `at` is missing or "
            f"not a date), so no run will archive them: {'; '.join(named)}",
        )
    ]


def mark_in_progress(stores: Stores, reports: dict[str, DayReport], now: dt.datetime) -> None:
    """A day whose lease a live run holds is being archived: its objects may precede its
    record and its events wait for the purge. Say so, rather than orphan or overdue."""
    for lease in stores.hot.live_leases(now):
        report = reports.get(lease.day)
        if report is not None:
            report.in_progress = (
                f"a run ({lease.owner} on {lease.host}) holds the day's lease until "
                f"{lease.expires_at:%Y-%m-%d %H:%M:%S}Z"
            )

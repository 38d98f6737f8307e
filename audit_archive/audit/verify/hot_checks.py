"""What verification asks the hot tier besides the chain's links: due events still in
hot, events of no day, and the days a live run is archiving right now."""

from __future__ import annotations

import datetime as dt

from audit_archive.audit.verify.report import DayReport, Finding, Status
from audit_archive.audit.verify.span import Span
from audit_archive.format import layout
from audit_archive.stores.clients import Stores
from audit_archive.stores.leasestore import Lease

MALFORMED_LISTING_MAX = 10_000  # overdue events read to name the malformed among them


def add_overdue(stores: Stores, span: Span, reports: dict[dt.date, DayReport]) -> None:
    """Chained events of a due day still in hot; the malformed among them named."""
    first, last = max(span.first, span.start), min(span.last, span.newest_due)
    if first > last:
        return
    start, end = layout.day_bounds(first)[0], layout.day_bounds(last)[1]
    for day, count in stores.events.chained_days(start, end):
        report = reports.get(day)
        if report is None:
            continue
        # Malformed events (malformed.py) stay in hot for good: name them. Listing reads
        # the day's hot events, so only for a day that is mostly archived.
        malformed = (
            stores.events.malformed_day_events(day) if count <= MALFORMED_LISTING_MAX else []
        )
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
    named = stores.events.dayless_chained()
    if not named:
        return []
    return [
        Finding(
            Status.OVERDUE,
            f"{len(named)} chained event(s) in hot belong to no day (their `at` is missing or "
            f"not a date), so no run will archive them: {'; '.join(named)}",
        )
    ]


def mark_in_progress(stores: Stores, reports: dict[dt.date, DayReport], now: dt.datetime) -> None:
    """A day whose lease a live run holds is being archived: its objects may precede its
    record and its events wait for the purge. Say so, rather than orphan or overdue. A
    lease no run could hold (implausible_lease) is a finding instead, and the day's other
    findings stand."""
    settings = stores.settings
    for lease in stores.leases.live_leases(now):
        day = layout.parse_day_or_none(lease.day)  # a lease's _id: a day, or signed-log
        report = reports.get(day) if day is not None else None
        if report is None:
            continue
        why = implausible_lease(lease, now, settings.lease_seconds, settings.run_max_seconds)
        if why is not None:
            report.add(
                Finding(
                    Status.ORPHAN,
                    f"the day's lease (run {lease.owner} on {lease.host}) is one no run can "
                    f"hold: {why}; the day is not taken for in progress",
                    lasting=True,
                )
            )
            continue
        report.in_progress = (
            f"a run ({lease.owner} on {lease.host}) holds the day's lease until "
            f"{lease.expires_at:%Y-%m-%d %H:%M:%S}Z"
        )


# Clocks differ between the archiver's hosts and the verifier's: this much is allowed.
CLOCK_SKEW = dt.timedelta(minutes=2)


def implausible_lease(
    lease: Lease, now: dt.datetime, lease_seconds: int, run_max_seconds: int
) -> str | None:
    """Why no run could hold ``lease`` now, or None when one could. A run renews its
    lease to at most AUDIT_LEASE_SECONDS ahead, takes it when it starts (``acquiredAt``)
    and ends within AUDIT_RUN_MAX_SECONDS (run monitoring ends it then); its lease
    outlives it by at most one lease time. Beyond either bound (plus CLOCK_SKEW) the
    lease was forged or left by a bug, and must not make the day ``in-progress``."""
    lease_time = dt.timedelta(seconds=lease_seconds)
    ahead = layout.as_utc(lease.expires_at) - now
    if ahead > lease_time + CLOCK_SKEW:
        return (
            f"it expires {_duration(ahead)} from now, beyond the lease time "
            f"(AUDIT_LEASE_SECONDS={lease_seconds})"
        )
    if lease.acquired_at is None:
        return "it does not say when it was taken (acquiredAt), as every run's lease does"
    age = now - layout.as_utc(lease.acquired_at)
    if age > dt.timedelta(seconds=run_max_seconds) + lease_time + CLOCK_SKEW:
        return (
            f"it was taken {_duration(age)} ago, longer than a run may take "
            f"(AUDIT_RUN_MAX_SECONDS={run_max_seconds}) and its lease outlive it"
        )
    return None


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"

"""Which days may be archived (SPEC section 2): a UTC day from ARCHIVE_START_DATE up to the
newest due one. Why another day is refused, in words an operator can act on; the Dagster
wiring refuses such a run when it starts, before any op (defs/resources.py)."""

from __future__ import annotations

import datetime as dt

from audit_archive.format import layout


def refusal(
    partition_key: str, start: dt.date, retention_days: int, now: dt.datetime
) -> str | None:
    """None when ``partition_key`` is a day that may be archived now; otherwise why not
    (not a day, before ARCHIVE_START_DATE, not due yet), ending "Nothing was changed."."""
    try:
        day = layout.parse_day(partition_key)
    except ValueError:
        return (
            f"{partition_key!r} is not a partition of cold_archive: partitions are UTC "
            "days written YYYY-MM-DD. Nothing was changed."
        )
    if day < start:
        return (
            f"{partition_key} is not a partition: it is before ARCHIVE_START_DATE "
            f"({start.isoformat()}). Nothing was changed."
        )
    if layout.is_due(day, now, retention_days):
        return None
    newest = layout.newest_due_day(now, retention_days)
    return (
        f"{partition_key} is not due yet: a day is archived once it is "
        f"{retention_days} days old (AUDIT_HOT_RETENTION_DAYS), at "
        f"{layout.due_at(day, retention_days):%Y-%m-%d %H:%M} UTC; the newest due day is "
        f"{layout.format_day(newest)}. Nothing was changed."
    )

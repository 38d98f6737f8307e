"""Which missed days the catch-up sensor asks for (pure: no Dagster, no I/O).

The daily schedule requests only the newest due day, so a day is missed whenever the
schedule was off, the daemon was down, or the day's run failed. The catch-up sensor
closes those gaps: it asks for every due day that has no batch record and no run
queued or in progress. Its run keys combine the day with the date of the request, so
a day whose run failed is asked for again the next day, never in a tight loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from audit_archive.format.layout import format_day, parse_day

# Enough for any realistic gap in one tick; a longer backlog (the sensor turned on
# months after ARCHIVE_START_DATE) is worked off over the next ticks, oldest first,
# without one sensor evaluation creating thousands of runs at once.
MAX_REQUESTS_PER_TICK = 100


def run_key(day: dt.date, requested_on: dt.date) -> str:
    """``<day>:<request date>``: Dagster launches one run per key, so a day is asked for
    at most once per (UTC) date."""
    return f"{format_day(day)}:{format_day(requested_on)}"


def day_of_run_key(key: str) -> dt.date | None:
    """The day a run key names; None for a key that names no day (not one of ours)."""
    try:
        return parse_day(key.split(":", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class CatchUp:
    """The sensor's decision for one tick, with the counts it reports."""

    to_request: tuple[dt.date, ...]
    due: int
    archived: int
    in_flight: int
    tried_today: int
    deferred: int

    def requested(self) -> str:
        """What a tick that requests runs says first: the days, by name."""
        n = len(self.to_request)
        return f"requesting {n} day{'' if n == 1 else 's'}: {format_days(self.to_request)}"

    def summary(self) -> str:
        return (
            f"{self.due} due day(s): {self.archived} archived, {self.in_flight} queued or "
            f"running, {self.tried_today} already tried today (retried tomorrow), "
            f"{len(self.to_request)} requested now"
            + (f", {self.deferred} left for the next ticks" if self.deferred else "")
        )


def format_days(days: Iterable[dt.date]) -> str:
    """Days as runs of consecutive dates: ``2024-01-01..2024-01-03, 2024-01-07``."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return ", ".join(
        format_day(a) if a == b else f"{format_day(a)}..{format_day(b)}" for a, b in runs
    )


def plan(
    due_days: Iterable[dt.date],
    archived: Iterable[dt.date],
    in_flight: Iterable[dt.date],
    tried_today: Iterable[dt.date],
    limit: int = MAX_REQUESTS_PER_TICK,
) -> CatchUp:
    """The due days to request now, oldest first: those with no batch record, no run
    queued or in progress, and no request already made today."""
    due = sorted(set(due_days))
    archived_set, in_flight_set, tried_set = set(archived), set(in_flight), set(tried_today)
    missing = [d for d in due if d not in archived_set]
    waiting = [d for d in missing if d not in in_flight_set]
    candidates = [d for d in waiting if d not in tried_set]
    return CatchUp(
        to_request=tuple(candidates[:limit]),
        due=len(due),
        archived=len(due) - len(missing),
        in_flight=len(missing) - len(waiting),
        tried_today=len(waiting) - len(candidates),
        deferred=max(0, len(candidates) - limit),
    )

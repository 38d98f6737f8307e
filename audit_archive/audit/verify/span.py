"""Which days to verify: by default every day from ARCHIVE_START_DATE to the newest due
day, and every day that holds a batch record or an object whatever the settings say now
(raising AUDIT_HOT_RETENTION_DAYS or moving ARCHIVE_START_DATE later hides nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from audit_archive.audit.verify.report import RangeError
from audit_archive.format import layout

LAST_DAY = dt.date.max - dt.timedelta(days=1)  # day_bounds() of the last day must exist


@dataclass(frozen=True)
class Span:
    first: dt.date
    last: dt.date
    newest_due: dt.date
    start: dt.date  # ARCHIVE_START_DATE: days before it are no partitions
    requested_last: dt.date | None = None  # --to, when later than any day can hold anything

    @property
    def days(self) -> list[dt.date]:
        return list(layout.days(self.first, self.last))

    def is_due(self, day: dt.date) -> bool:
        return self.start <= day <= self.newest_due


def resolve_span(
    start: dt.date,
    newest_due: dt.date,
    today: dt.date,
    first: dt.date | None,
    last: dt.date | None,
    held: Iterable[dt.date],
) -> Span | None:
    """The days to verify; None when nothing is due and nothing is held (no flags were
    given). ``held``: the days with a batch record or an object (within the flags).
    Raises RangeError, naming only the flags given, for a range that holds nothing."""
    held_days = sorted(held)
    lo = first if first is not None else min([start, *held_days[:1]])
    hi = last if last is not None else max([newest_due, *held_days[-1:]])
    ceiling = min(max([today, newest_due, *held_days[-1:]]), LAST_DAY)
    if first is not None and first > ceiling:
        raise RangeError(f"--from {first} is after every day that can hold anything ({ceiling})")
    requested = None
    if hi > ceiling:  # no day after it holds anything: --to 9999-12-31 stops there
        requested, hi = hi, ceiling
    before_start = [d for d in held_days if first is not None and first <= d < start]
    if first is not None and first < start and not any(d <= hi for d in before_start):
        raise RangeError(
            f"--from {first} is before ARCHIVE_START_DATE ({start}) and no day before it "
            "holds a batch record or an object: those days are not partitions of the archive"
        )
    if hi < lo:
        if first is not None and last is not None:
            raise RangeError(f"--to {last} is before --from {first}")
        if first is not None:
            raise RangeError(
                f"--from {first} is after the newest due day ({newest_due}) and every archived day"
            )
        if last is not None:
            raise RangeError(
                f"--to {last} is before ARCHIVE_START_DATE ({start}) and no earlier day holds "
                "a batch record or an object"
            )
        return None
    return Span(lo, hi, newest_due, start, requested)

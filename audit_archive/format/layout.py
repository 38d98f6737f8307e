"""Object keys and day arithmetic: where a part lives and when a day is due."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

DAY_FORMAT = "%Y-%m-%d"
_PART_KEY = re.compile(r"day=(\d{4}-\d{2}-\d{2})/part-(\d{4,})\.(jsonl\.gz|manifest\.json)$")


def parse_day(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` day; ValueError with the text for anything else."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return dt.datetime.strptime(text, DAY_FORMAT).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a day in the form YYYY-MM-DD") from None


def parse_day_or_none(value: object) -> dt.date | None:
    """The day a stored field names (a batch record's ``day``, a lease's ``_id``, a key's
    ``day=``), or None when it names none (not text, or not a ``YYYY-MM-DD`` day)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_day(value)
    except ValueError:
        return None


def format_day(day: dt.date) -> str:
    """``YYYY-MM-DD``, the year always four digits (strftime drops the zeros before 1000,
    and then the text neither parses back nor sorts with the others)."""
    return day.isoformat()


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored datetime in UTC (a naive one is UTC: the driver's default)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[D 00:00Z, D+1 00:00Z)``: the ``at`` range of partition D."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def newest_due_day(now: dt.datetime, retention_days: int) -> dt.date:
    """D is due once ``D+1 00:00Z <= now - retention``."""
    cutoff = now.astimezone(dt.UTC) - dt.timedelta(days=retention_days)
    return cutoff.date() - dt.timedelta(days=1)


def due_at(day: dt.date, retention_days: int) -> dt.datetime:
    """The moment day D becomes due."""
    return day_bounds(day)[1] + dt.timedelta(days=retention_days)


def is_due(day: dt.date, now: dt.datetime, retention_days: int) -> bool:
    return day <= newest_due_day(now, retention_days)


def days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def day_prefix(prefix: str, day: dt.date | str) -> str:
    day_text = day if isinstance(day, str) else format_day(day)
    return f"{_clean(prefix)}day={day_text}/"


def jsonl_key(prefix: str, day: dt.date | str, part: int) -> str:
    return f"{day_prefix(prefix, day)}part-{part:04d}.jsonl.gz"


def manifest_key(prefix: str, day: dt.date | str, part: int) -> str:
    return f"{day_prefix(prefix, day)}part-{part:04d}.manifest.json"


def probe_key(prefix: str) -> str:
    """The one object the start-up probe of conditional writes writes (stores.conditional):
    outside ``day=`` and ``log/``, written once and never changed."""
    return f"{_clean(prefix)}probe/conditional-writes"


def parse_part_key(key: str) -> tuple[str, int, str] | None:
    """(day, part, "jsonl.gz" | "manifest.json") for a part's key, else None."""
    m = _PART_KEY.search(key)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def _clean(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""

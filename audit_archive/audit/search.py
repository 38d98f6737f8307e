"""Search archived days in place: stream every recorded part of a day range and yield
the lines of the events that match, without restoring anything.

The work is bounded by what exists, not by the range: the batch records of the range
are read in one query, so ``--from 1970-01-01 --to 9999-12-31`` costs what the
archive's records cost. Memory is bounded by one read chunk (1 MiB of gzip,
decompressed) whatever the number of days: parts are streamed by the checked-part
reader (reader.py) and matching lines are yielded as they are found, never collected.
Each part's manifest is checked (signature, sha256 against its record) before it is
read, and its object (sha256, size, line count) once it has been read; a part that
fails is reported in ``SearchStats.problems`` (its events may already have been
yielded: search finds, ``restore`` and ``prove`` are the commands that vouch).

Filters combine with AND: ``actor`` matches ``actor.id``, ``action`` and ``source``
the fields of that name, ``seq`` one event. Values compare as text with the field's
plain JSON value (an ObjectId or Int64 field matches its inner value too). A line in
the ``{"bson": ...}`` form of SPEC 3 is decoded and matched like any other, and
yielded as archived (``jsonl.parse_line`` reads it back). A line that a cheap test
shows cannot match is neither decoded nor re-hashed; the object's sha256 against the
signed manifest still covers it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from audit_archive.audit.reader import CheckedPart, open_part
from audit_archive.audit.signed_log_view import log_vouch
from audit_archive.format import layout
from audit_archive.format.jsonl import BSON_LINE_KEY
from audit_archive.format.malformed import is_integer_seq
from audit_archive.stores.clients import Stores

# Values made of these characters are written literally by every JSON encoder, so a
# line that does not contain them cannot match: a cheap test before decoding it.
_LITERAL = re.compile(r"^[A-Za-z0-9 ._:@+=-]+$")


@dataclass(frozen=True)
class Filters:
    actor: str | None = None
    action: str | None = None
    source: str | None = None
    seq: int | None = None

    def needles(self) -> list[bytes]:
        """Byte strings every matching line must contain (a test before decoding)."""
        out = []
        for value in (self.actor, self.action, self.source):
            if value is not None and _LITERAL.match(value):
                out.append(value.encode("ascii"))
        if self.seq is not None:
            out.append(str(self.seq).encode("ascii"))
        return out

    def matches(self, event: dict[str, Any]) -> bool:
        """``event`` is a line decoded as plain JSON (Relaxed Extended JSON data)."""
        actor = event.get("actor")
        return (
            (
                self.actor is None
                or _same(actor.get("id") if isinstance(actor, dict) else None, self.actor)
            )
            and (self.action is None or _same(event.get("action"), self.action))
            and (self.source is None or _same(event.get("source"), self.source))
            and (self.seq is None or _same(event.get("seq"), str(self.seq)))
        )


def _same(value: Any, wanted: str) -> bool:
    if isinstance(value, dict) and len(value) == 1:  # {"$oid": ...}, {"$numberLong": ...}
        value = next(iter(value.values()))
    if isinstance(value, bool) or value is None:
        return False
    return str(value) == wanted if isinstance(value, str | int) else False


# A line in the {"bson": ...} form starts so: its bytes say nothing about its fields.
_BSON_LINE_START = b'{"' + BSON_LINE_KEY.encode() + b'":'
# Days without a record named in SearchStats (the count covers the rest).
MISSING_DAYS_NAMED = 5


@dataclass
class SearchStats:
    days: int = 0
    days_without_record: int = 0
    missing_days: list[dt.date] = field(default_factory=list)  # the first few of them
    parts: int = 0
    parts_skipped_by_seq: int = 0
    events_read: int = 0
    matches: int = 0
    problems: list[str] = field(default_factory=list)

    def count_days(self, first: dt.date, last: dt.date, recorded: Iterable[dt.date]) -> None:
        """Days in [first, last] and which have no record, from the recorded ones
        (sorted), without walking a range that may span millennia."""
        self.days = (last - first).days + 1
        seen = set(recorded)
        self.days_without_record = self.days - len(seen)
        day = first
        while len(self.missing_days) < min(MISSING_DAYS_NAMED, self.days_without_record):
            if day not in seen:
                self.missing_days.append(day)
            day += dt.timedelta(days=1)


# Told the day a part is of before it is read, and the counts so far (a progress bar).
SearchProgress = Callable[[dt.date, SearchStats], None]


def search(
    stores: Stores,
    first: dt.date,
    last: dt.date,
    filters: Filters,
    stats: SearchStats | None = None,
    progress: SearchProgress | None = None,
) -> Iterator[bytes]:
    """Matching events' JSONL lines (without newline), in day, part and seq order."""
    stats = stats if stats is not None else SearchStats()
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    keys = stores.settings.verification_keys
    vouch = log_vouch(stores)  # without the HMAC key, parts the signed log covers count
    recorded: list[dt.date] = []
    try:
        for record in stores.batches.records_between(first, last):
            day = layout.parse_day_or_none(record.get("day"))
            if day is not None and (not recorded or recorded[-1] != day):
                recorded.append(day)
            if not record.get("eventCount"):
                continue
            lo, hi = record.get("startSeq"), record.get("endSeq")
            if (
                filters.seq is not None
                and is_integer_seq(lo)
                and is_integer_seq(hi)
                and not lo <= filters.seq <= hi
            ):  # a record without a usable range is read, not trusted to exclude
                stats.parts_skipped_by_seq += 1
                continue
            if progress is not None and day is not None:
                progress(day, stats)
            yield from _search_part(open_part(stores.cold, record, keys, vouch), filters, stats)
    finally:
        stats.count_days(first, last, recorded)


def _search_part(part: CheckedPart, filters: Filters, stats: SearchStats) -> Iterator[bytes]:
    if not part.ok:
        stats.problems.append(f"{part.describe()}; not searched")
        return
    stats.parts += 1
    needles = filters.needles()

    def may_match(raw: bytes) -> bool:
        return raw.startswith(_BSON_LINE_START) or all(n in raw for n in needles)

    before = stats.events_read
    for line in part.lines(may_match if needles else None):
        stats.events_read = before + part.events_read
        if filters.matches(line.plain()):
            stats.matches += 1
            yield line.raw
    stats.events_read = before + part.events_read
    if not part.ok:
        stats.problems.append(part.describe())

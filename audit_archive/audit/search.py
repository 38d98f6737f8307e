"""Search archived days in place: stream every recorded part of a day range and yield
the lines of the events that match, without restoring anything.

Memory is bounded by one read chunk (1 MiB of gzip, decompressed) whatever the number
of days: parts are streamed chunk by chunk (reader.PartStream) and matching lines are
yielded as they are found, never collected. Each part's manifest signature is checked before it is read, and its sha256 and
size once it has been read; a part that fails is reported in ``SearchStats.problems``
(its events may already have been yielded: search finds, ``restore`` and ``prove``
are the commands that vouch).

Filters combine with AND: ``actor`` matches ``actor.id``, ``action`` and ``source``
the fields of that name, ``seq`` one event. Values compare as text with the field's
plain JSON value (an ObjectId or Int64 field matches its inner value too).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from audit_archive.audit.reader import PartReadError, PartStream, load_manifest
from audit_archive.format import layout
from audit_archive.format.manifest import SignatureStatus
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


@dataclass
class SearchStats:
    days: int = 0
    days_without_record: list[str] = field(default_factory=list)
    parts: int = 0
    parts_skipped_by_seq: int = 0
    events_read: int = 0
    matches: int = 0
    problems: list[str] = field(default_factory=list)


def search(
    stores: Stores,
    first: dt.date,
    last: dt.date,
    filters: Filters,
    stats: SearchStats | None = None,
) -> Iterator[bytes]:
    """Matching events' JSONL lines (without newline), in day, part and seq order."""
    stats = stats if stats is not None else SearchStats()
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    needles = filters.needles()
    keys = stores.settings.verification_keys
    for day in layout.days(first, last):
        day_text = layout.format_day(day)
        stats.days += 1
        records = stores.hot.records(day_text)
        if not records:
            stats.days_without_record.append(day_text)
            continue
        for record in records:
            if not record.get("eventCount"):
                continue
            if filters.seq is not None and not (
                record["startSeq"] <= filters.seq <= record["endSeq"]
            ):
                stats.parts_skipped_by_seq += 1
                continue
            yield from _search_part(stores, record, keys, filters, needles, stats)


def _search_part(
    stores: Stores,
    record: dict[str, Any],
    keys: tuple[str, ...],
    filters: Filters,
    needles: list[bytes],
    stats: SearchStats,
) -> Iterator[bytes]:
    where = f"{record['day']} part {record['part']}"
    loaded = load_manifest(stores.cold, record["manifestKey"], keys)
    if loaded.status is not SignatureStatus.VALID:
        stats.problems.append(f"{where}: manifest signature is {loaded.status.value}; not searched")
        return
    jsonl = loaded.manifest.get("jsonl") or {}
    stats.parts += 1
    stream = PartStream(stores.cold, jsonl.get("key") or record["jsonlKey"])
    try:
        for line in stream.raw_lines():
            stats.events_read += 1
            if any(n not in line for n in needles):
                continue
            if filters.matches(json.loads(line)):
                stats.matches += 1
                yield line
        stream.check(jsonl.get("sha256"), jsonl.get("bytes"))
    except (PartReadError, ValueError) as e:
        stats.problems.append(f"{where}: {e}")

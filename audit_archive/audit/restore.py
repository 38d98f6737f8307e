"""Restore one archived day into a MongoDB collection, after proving it intact.

Two phases, so a day that fails any check writes nothing at all:

1. **check**: for every recorded part of the day (parts 1..n, no gaps), the manifest's
   signature must be valid with a known key (``unverifiable`` is refused too: nothing
   vouches for such a part), the manifest object must be the one the batch record
   names (sha256), and the events object must match the signed sha256 and size, hold
   ``eventCount`` lines, and every event must re-hash to its ``hash``. The decoded
   events are spooled to a local BSON file while they are checked (bounded memory;
   disk about the day's uncompressed size), so S3 is read once.
2. **write**: the spooled documents are upserted by ``_id`` (``replace_one`` with
   upsert, in unordered bulk batches), so restoring twice leaves one copy and a
   restored copy edited since is put back to the archived version.

Documents come back equal to the originals: Relaxed Extended JSON keeps every BSON
type but the integer width (Int32/Int64 come back by value), which the hash scheme
treats alike, so a restored event still re-hashes to its ``hash``.

The target defaults to ``auditevents_restored``; the hot events and batches
collections are refused, so restored events never re-enter the archive cycle (the
next run would archive them again as a new part).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne

from audit_archive.audit.reader import PartReadError, PartStream, load_manifest
from audit_archive.errors import AuditArchiveError
from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS
from audit_archive.format.manifest import SignatureStatus
from audit_archive.stores.clients import Stores

DEFAULT_COLLECTION = "auditevents_restored"
WRITE_BATCH = 1000
_COLLECTION = re.compile(r"^[^$\x00]+$")
_RAW_OPTIONS = EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument)

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class NoRecordError(AuditArchiveError):
    """The day has no batch record: nothing of it is archived (or it is not due yet)."""


class RestoreRefused(AuditArchiveError):
    """The day failed verification; nothing was written. ``reasons`` names each failure."""

    def __init__(self, day: str, reasons: list[str]) -> None:
        self.day = day
        self.reasons = reasons
        super().__init__(f"restore of {day} refused, nothing was written: " + "; ".join(reasons))


@dataclass(frozen=True)
class RestoreResult:
    day: str
    database: str
    collection: str
    parts: tuple[int, ...]
    events: int
    inserted: int  # new documents
    replaced: int  # documents with that _id were already there (put back as archived)


@dataclass(frozen=True)
class _Checked:
    part: int
    spool: Path | None
    events: int


def check_target(stores: Stores, into: str) -> None:
    """ValueError unless ``into`` is a collection restore may write."""
    s = stores.settings
    if not _COLLECTION.match(into) or into.startswith("system.") or not into.strip():
        raise ValueError(f"{into!r} is not a valid collection name")
    forbidden = {
        s.events_collection: "the hot events collection (AUDIT_EVENTS_COLLECTION): restored "
        "events would be archived again",
        s.batches_collection: "the batch records collection (AUDIT_BATCHES_COLLECTION)",
        f"{s.batches_collection}_leases": "the archive's lease collection",
    }
    if into in forbidden:
        raise ValueError(f"refusing to restore into {into!r}: it is {forbidden[into]}")


def _check_part(
    stores: Stores, record: dict[str, Any], spool_dir: Path, problems: list[str]
) -> _Checked | None:
    """Phase 1 for one part; appends every problem found, returns None if any."""
    where = f"part {record['part']}"
    before = len(problems)
    loaded = load_manifest(stores.cold, record["manifestKey"], stores.settings.verification_keys)
    manifest = loaded.manifest
    if loaded.status is SignatureStatus.UNVERIFIABLE:
        key_id = (manifest.get("signing") or {}).get("keyId")
        problems.append(
            f"{where}: manifest is unverifiable: signed with key id {key_id}, which is "
            "neither AUDIT_SIGNING_KEY nor in AUDIT_SIGNING_KEYS_PREVIOUS"
        )
        return None
    if loaded.status is SignatureStatus.MODIFIED:
        problems.append(f"{where}: manifest signature does not match (the manifest was changed)")
        return None
    if loaded.sha256 != record.get("manifestSha256"):
        problems.append(f"{where}: manifest object differs from the one its batch record names")
    for field, expected in (("day", record["day"]), ("part", record["part"])):
        if manifest.get(field) != expected:
            problems.append(f"{where}: manifest says {field} {manifest.get(field)!r}")
    count = manifest.get("eventCount")
    if count != record.get("eventCount"):
        problems.append(
            f"{where}: manifest counts {count} events, its record {record.get('eventCount')}"
        )
    if len(problems) > before:
        return None
    if not count:
        return _Checked(record["part"], None, 0)
    jsonl = manifest.get("jsonl") or {}
    if record.get("jsonlSha256") != jsonl.get("sha256"):
        problems.append(f"{where}: batch record and manifest name different sha256 for the events")
        return None
    spool = spool_dir / f"part-{record['part']:04d}.bson"
    stream = PartStream(stores.cold, jsonl.get("key"))
    try:
        with open(spool, "wb") as out:
            for doc in stream.events():
                out.write(bson.encode(doc, codec_options=EVENT_CODEC_OPTIONS))
        stream.check(jsonl.get("sha256"), jsonl.get("bytes"))
    except PartReadError as e:
        problems.append(f"{where}: {e}")
        return None
    except ValueError as e:  # truncated gzip, a line that is not Extended JSON
        problems.append(f"{where}: {jsonl.get('key')} cannot be read: {e}")
        return None
    if stream.lines != count:
        problems.append(f"{where}: {stream.lines} events in the object, manifest says {count}")
        return None
    return _Checked(record["part"], spool, stream.lines)


def _iter_spool(path: Path) -> Iterator[RawBSONDocument]:
    with open(path, "rb") as f:
        yield from bson.decode_file_iter(f, codec_options=_RAW_OPTIONS)


def restore_day(
    stores: Stores,
    day: str,
    into: str = DEFAULT_COLLECTION,
    *,
    batch_size: int = WRITE_BATCH,
    log: Log = _quiet,
) -> RestoreResult:
    """Check every part of ``day``, then upsert its events into ``into``.

    Raises NoRecordError (no batch record for the day), RestoreRefused (a check
    failed; nothing written) or ValueError (``into`` may not be written).
    """
    day = layout.format_day(layout.parse_day(day))
    check_target(stores, into)
    records = stores.hot.records(day)
    if not records:
        raise NoRecordError(
            f"{day} has no batch record: it is not archived (not due yet, or never run)"
        )
    problems: list[str] = []
    parts = [r["part"] for r in records]
    if parts != list(range(1, len(parts) + 1)):
        problems.append(f"recorded parts are {parts}: a part is missing")
    work_dir = Path(stores.settings.work_dir or tempfile.gettempdir())
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"audit-restore-{day}-", dir=work_dir) as tmp:
        checked = []
        for record in records:
            part = _check_part(stores, record, Path(tmp), problems)
            if part is not None:
                checked.append(part)
                log(f"{day} part {part.part}: {part.events} events verified")
        if problems:
            raise RestoreRefused(day, problems)

        target = stores.hot.db[into]
        inserted = replaced = total = 0
        for part in checked:
            if part.spool is None:
                continue
            ops: list[ReplaceOne] = []
            for raw in _iter_spool(part.spool):
                ops.append(ReplaceOne({"_id": raw["_id"]}, raw, upsert=True))
                if len(ops) >= batch_size:
                    res = target.bulk_write(ops, ordered=False)
                    inserted, replaced = inserted + res.upserted_count, replaced + res.matched_count
                    ops = []
            if ops:
                res = target.bulk_write(ops, ordered=False)
                inserted, replaced = inserted + res.upserted_count, replaced + res.matched_count
            total += part.events
            log(f"{day} part {part.part}: {part.events} events written to {into}")
    return RestoreResult(
        day, stores.settings.database, into, tuple(parts), total, inserted, replaced
    )

"""Restore one archived day into a MongoDB collection, after proving it intact.

Two phases, so a day that fails any check writes nothing at all:

1. **check**: every recorded part of the day (parts 1..n, no gaps) is read by the
   checked-part reader (reader.py): the manifest's signature valid with a known key
   (``unverifiable`` is refused too: nothing vouches for such a part), the manifest the
   one its batch record names, the events object as signed (sha256, size, line count,
   Merkle root) and every event re-hashing. The documents are spooled to a local BSON
   file while they are checked (bounded memory; disk about the day's uncompressed
   size), so S3 is read once.
2. **write**: the spooled documents go in with unordered bulk inserts (``insert_many``,
   ``ordered=False``), the fast path for what is new. A document whose ``_id`` is
   already in the target is compared with the archived one canonically (the hash
   scheme's view: Int32 and Int64 alike, key order aside): identical is fine (restoring
   twice leaves one copy, and says so), different is refused. When the target already
   holds documents, they are looked up by ``_id`` before anything is inserted, so a
   conflict refuses the restore with nothing written; only a document written by
   someone else between that look-up and the insert is found afterwards
   (RestoreConflict, which names it).

Documents come back equal to the originals: Relaxed Extended JSON keeps every BSON type
but the integer width (Int32/Int64 come back by value), which the hash scheme treats
alike; a ``{"bson": ...}`` line (SPEC 3) carries the stored BSON bytes, which are
inserted exactly as they were.

The target defaults to ``auditevents_restored``; the hot events and batches
collections are refused, so restored events never re-enter the archive cycle (the
next run would archive them again as a new part).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument

from audit_archive.audit.reader import CheckedPart, open_part
from audit_archive.errors import AuditArchiveError
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, canonical_json
from audit_archive.progress import Log, quiet
from audit_archive.settings import is_collection_name
from audit_archive.stores.clients import Stores

DEFAULT_COLLECTION = "auditevents_restored"
WRITE_BATCH = 1000
# MongoDB's limit on a namespace, "<database>.<collection>", in UTF-8 bytes.
NAMESPACE_MAX_BYTES = 255
CONFLICTS_NAMED = 10
_RAW_OPTIONS = EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument)
# (phase, events done, events in the day): "checking" while parts are read and spooled,
# then "writing" while the spooled events are inserted. Reported every PROGRESS_STEP.
RestoreProgress = Callable[[str, int, int], None]
PROGRESS_STEP = 1000


class NoRecordError(AuditArchiveError):
    """The day has no batch record: nothing of it is archived (or it is not due yet)."""


class RestoreRefused(AuditArchiveError):
    """The day failed verification, or the target holds different documents under the
    same ``_id``s; nothing was written. ``reasons`` names each failure."""

    def __init__(self, day: dt.date, reasons: list[str]) -> None:
        self.day = day
        self.reasons = reasons
        super().__init__(f"restore of {day} refused, nothing was written: " + "; ".join(reasons))


class _TargetDiffers(AuditArchiveError):
    """The look-up before writing found different documents (RestoreRefused names the day)."""


class RestoreConflict(AuditArchiveError):
    """Documents that appeared in the target during the write differ from the archive's
    (the new ones were written; these were left as they are)."""


@dataclass(frozen=True)
class RestoreResult:
    day: dt.date
    database: str
    collection: str
    parts: tuple[int, ...]
    events: int
    inserted: int  # new documents
    already_there: int  # identical documents (canonically) were already in the target


@dataclass(frozen=True)
class _Spooled:
    part: int
    path: Path | None
    events: int


def check_target(stores: Stores, into: str) -> None:
    """ValueError unless ``into`` is a collection restore may write."""
    s = stores.settings
    if not is_collection_name(into):
        raise ValueError(f"{into!r} is not a valid collection name")
    namespace = len(f"{s.database}.{into}".encode())
    if namespace > NAMESPACE_MAX_BYTES:
        raise ValueError(
            f"collection name of {len(into)} characters is too long: MongoDB allows "
            f"{NAMESPACE_MAX_BYTES} bytes for '<database>.<collection>' and "
            f"'{s.database}.' leaves {NAMESPACE_MAX_BYTES - len(s.database.encode()) - 1}"
        )
    forbidden = {
        s.events_collection: "the hot events collection (AUDIT_EVENTS_COLLECTION): restored "
        "events would be archived again",
        s.batches_collection: "the batch records collection (AUDIT_BATCHES_COLLECTION)",
        f"{s.batches_collection}_leases": "the archive's lease collection",
    }
    if into in forbidden:
        raise ValueError(f"refusing to restore into {into!r}: it is {forbidden[into]}")


def _spool(
    part: CheckedPart, spool_dir: Path, advance: Callable[[int], None] = lambda _n: None
) -> _Spooled | None:
    """Phase 1 for one part: read it with every check, writing its documents to a BSON
    file as they come. None when the part does not check out (``part.problems``)."""
    number = int(part.record["part"])
    if not part.ok:
        return None
    if not part.event_count:
        return _Spooled(number, None, 0)
    path = spool_dir / f"part-{number:04d}.bson"
    events = 0
    with open(path, "wb") as out:
        for line in part.lines():
            out.write(line.bson())
            events += 1
            if events % PROGRESS_STEP == 0:
                advance(PROGRESS_STEP)
    advance(events % PROGRESS_STEP)
    return _Spooled(number, path, events) if part.ok else None


def _batches(path: Path, size: int) -> Iterator[list[RawBSONDocument]]:
    batch: list[RawBSONDocument] = []
    with open(path, "rb") as f:
        for doc in bson.decode_file_iter(f, codec_options=_RAW_OPTIONS):
            batch.append(doc)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _same(archived: RawBSONDocument, present: RawBSONDocument) -> bool:
    """Equal as the hash scheme sees documents (Int32/Int64 alike, key order aside)."""
    if archived.raw == present.raw:
        return True
    decode = EVENT_CODEC_OPTIONS
    return canonical_json(bson.decode(archived.raw, decode)) == canonical_json(
        bson.decode(present.raw, decode)
    )


def _compare(stores: Stores, into: str, docs: list[RawBSONDocument]) -> tuple[set[Any], list[Any]]:
    """Of ``docs``, the ``_id``s in the target with identical content, and those with
    different content."""
    present = stores.restore_target.find_raw_by_ids(into, [d["_id"] for d in docs])
    same: set[Any] = set()
    differ: list[Any] = []
    for doc in docs:
        there = present.get(doc["_id"])
        if there is not None:
            if _same(doc, there):
                same.add(doc["_id"])
            else:
                differ.append(doc["_id"])
    return same, differ


def _conflict_text(ids: list[Any], into: str) -> str:
    named = ", ".join(str(i) for i in ids[:CONFLICTS_NAMED])
    more = f" and {len(ids) - CONFLICTS_NAMED} more" if len(ids) > CONFLICTS_NAMED else ""
    return (
        f"{len(ids)} document(s) already in {into} differ from the archived ones with the "
        f"same _id ({named}{more}); restore into another collection (--into) or remove them"
    )


# What the look-up before writing found in one batch: nothing (insert all), all of it
# identical (insert none), or these identical ids (insert the rest). Kept per batch so
# memory stays small for the usual cases.
_NONE, _ALL = "none", "all"


def _look_up(stores: Stores, into: str, paths: list[Path], batch_size: int) -> list[str | set[Any]]:
    """Phase 2a, only when the target holds documents: every archived ``_id`` looked up
    before anything is written; _TargetDiffers if any holds different content."""
    found: list[str | set[Any]] = []
    differ: list[Any] = []
    for path in paths:
        for batch in _batches(path, batch_size):
            same, different = _compare(stores, into, batch)
            differ += different
            found.append(_NONE if not same else _ALL if len(same) == len(batch) else same)
    if differ:
        raise _TargetDiffers(_conflict_text(differ, into))
    return found


def _write(
    stores: Stores,
    into: str,
    spools: list[_Spooled],
    batch_size: int,
    advance: Callable[[int], None] = lambda _n: None,
) -> tuple[int, int]:
    """Phase 2: (inserted, already there), inserting in unordered bulks."""
    paths = [s.path for s in spools if s.path is not None]
    empty = stores.restore_target.collection_is_empty(into)
    found = iter([] if empty else _look_up(stores, into, paths, batch_size))
    inserted = already = 0
    late: list[Any] = []  # written by someone else since the look-up, and different
    for path in paths:
        for batch in _batches(path, batch_size):
            advance(len(batch))
            there = _NONE if empty else next(found)
            if there == _ALL:
                already += len(batch)
                continue
            if isinstance(there, set):
                already += len(there)
                batch = [d for d in batch if d["_id"] not in there]
            n, duplicates = stores.restore_target.insert_new(into, batch)
            inserted += n
            if duplicates:
                dup = set(duplicates)
                same, differ = _compare(stores, into, [d for d in batch if d["_id"] in dup])
                already += len(same)
                late += differ
    if late:
        raise RestoreConflict(
            f"{inserted} new document(s) were written to {into}, but "
            + _conflict_text(late, into)
            + " (written there while this restore ran)"
        )
    return inserted, already


def restore_day(
    stores: Stores,
    day: dt.date,
    into: str = DEFAULT_COLLECTION,
    *,
    batch_size: int = WRITE_BATCH,
    log: Log = quiet,
    progress: RestoreProgress | None = None,
) -> RestoreResult:
    """Check every part of ``day``, then insert its events into ``into``.

    Raises NoRecordError (no batch record for the day), RestoreRefused (a check
    failed, or the target holds different documents; nothing written), RestoreConflict
    (different documents appeared during the write) or ValueError (``into`` may not be
    written). ``progress`` hears how far each phase is, in events."""
    check_target(stores, into)
    records = stores.batches.records(day)
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
    keys = stores.settings.verification_keys
    checking = _counter("checking", sum(int(r.get("eventCount") or 0) for r in records), progress)
    with tempfile.TemporaryDirectory(prefix=f"audit-restore-{day}-", dir=work_dir) as tmp:
        spools = []
        for record in records:
            part = open_part(stores.cold, record, keys)
            spooled = _spool(part, Path(tmp), checking)
            if spooled is None:
                problems += [f"part {record['part']}: {p}" for p in part.problems]
                continue
            spools.append(spooled)
            log(f"{day} part {spooled.part}: {spooled.events} events verified")
        if problems:
            raise RestoreRefused(day, problems)
        try:
            writing = _counter("writing", sum(s.events for s in spools), progress)
            inserted, already = _write(stores, into, spools, batch_size, writing)
        except _TargetDiffers as e:
            raise RestoreRefused(day, [str(e)]) from None
    total = sum(s.events for s in spools)
    log(f"{day}: {total} events in {into} ({inserted} new, {already} already there)")
    return RestoreResult(
        day, stores.settings.database, into, tuple(parts), total, inserted, already
    )


def _counter(phase: str, total: int, progress: RestoreProgress | None) -> Callable[[int], None]:
    """``advance(n)``: n more events of ``phase`` done, reported to ``progress``."""
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(phase, done, total)

    advance(0)
    return advance

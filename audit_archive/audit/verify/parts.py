"""What the bucket and the batch records hold: each day's parts, and the objects that
are no part's, gathered once and read concurrently (manifests downloaded, events objects
HEAD-ed)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from audit_archive.audit.reader import Defect, open_part
from audit_archive.audit.verify.report import Finding, ReadReason, Status
from audit_archive.format import layout
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.manifest import SignatureStatus
from audit_archive.stores.clients import Stores


@dataclass(frozen=True)
class StoredObject:
    """An object as the bucket listing describes it."""

    key: str
    size: int
    modified: dt.datetime | None
    algorithms: tuple[str, ...]


@dataclass
class Part:
    """One part of a day: its record, its objects, and what was found about them."""

    day: dt.date
    part: int
    manifest_key: str
    jsonl_key: str
    record: dict[str, Any] | None = None
    manifest_object: StoredObject | None = None
    jsonl_object: StoredObject | None = None
    manifest: dict[str, Any] | None = None  # parsed, or {} when unreadable
    manifest_sha256: str | None = None
    signature: SignatureStatus | None = None
    head: dict[str, Any] | None = None
    unconfirmed: ReadReason | None = None  # the HEAD could not confirm the events object
    findings: list[Finding] = field(default_factory=list)
    edges: list[dict[str, Any]] | None = None  # for the chain walk; None = unknown

    def add(
        self, kind: Status, message: str, seqs: Sequence[int] = (), *, lasting: bool = False
    ) -> None:
        self.findings.append(Finding(kind, message, self.part, tuple(seqs), lasting))

    @property
    def source(self) -> tuple[dt.date, int]:
        return self.day, self.part

    def named_by(self, manifest: Mapping[str, Any]) -> bool:
        """Does ``manifest`` name this part's day and number (it is in its place)?"""
        day = layout.parse_day_or_none(manifest.get("day"))
        return (day, manifest.get("part")) == self.source

    @property
    def tainted(self) -> bool:
        return any(f.kind in (Status.MODIFIED, Status.UNVERIFIABLE) for f in self.findings)

    @property
    def trusted_manifest(self) -> dict[str, Any] | None:
        """The manifest when its signature holds (or names a key we do not hold)."""
        if self.manifest and self.signature in (
            SignatureStatus.VALID,
            SignatureStatus.UNVERIFIABLE,
        ):
            return self.manifest
        return None

    @property
    def jsonl_meta(self) -> dict[str, Any]:
        """The manifest's description of the events object ({} when it has none)."""
        jsonl = (self.manifest or {}).get("jsonl")
        return dict(jsonl) if isinstance(jsonl, Mapping) else {}

    def expected_sha256(self) -> list[tuple[str, Any]]:
        """(whose, sha256) of the events object, as its manifest and its record say."""
        return [
            ("its manifest", self.jsonl_meta.get("sha256")),
            ("its batch record", (self.record or {}).get("jsonlSha256")),
        ]

    @property
    def event_count(self) -> int:
        for source in (self.trusted_manifest, self.record, self.manifest):
            if source and is_integer_seq(source.get("eventCount")):
                return int(source["eventCount"])
        return 0

    @property
    def seq_range(self) -> tuple[int, int] | None:
        for source in (self.trusted_manifest, self.record):
            lo, hi = (source or {}).get("startSeq"), (source or {}).get("endSeq")
            if is_integer_seq(lo) and is_integer_seq(hi):
                return int(lo), int(hi)
        return None


@dataclass
class Listing:
    """The day folders' objects by day, and keys under ``day=`` whose folder is no day."""

    by_day: dict[dt.date, dict[str, StoredObject]]
    stray: list[str]


def list_day_folders(stores: Stores, first: dt.date | None, last: dt.date | None) -> Listing:
    """Objects under ``<prefix>/day=D/`` for D in [first, last] (either end open)."""
    folder = layout.day_prefix(stores.settings.cold_prefix, "x")
    root = folder[: folder.rindex("day=") + len("day=")]
    by_day: dict[dt.date, dict[str, StoredObject]] = defaultdict(dict)
    stray: list[str] = []
    # Keys sort as text: the listing starts at --from's folder and stops after --to's.
    last_text = layout.format_day(last) if last is not None else None
    start_after = root + layout.format_day(first) if first is not None else ""
    for obj in stores.cold.list_keys(root, start_after=start_after):
        key = obj["Key"]
        rest = key[len(root) :]
        if last_text is not None and rest[:10] > last_text:
            break
        day = layout.parse_day_or_none(rest[:10])
        if day is None or rest[10:11] != "/":
            stray.append(key)
            continue
        by_day[day][key] = StoredObject(
            key,
            int(obj.get("Size") or 0),
            obj.get("LastModified"),
            tuple(obj.get("ChecksumAlgorithm") or ()),
        )
    return Listing(by_day, stray)


def gather_parts(
    prefix: str,
    days: list[dt.date],
    records: Mapping[dt.date, list[dict[str, Any]]],
    objects: Mapping[dt.date, dict[str, StoredObject]],
) -> tuple[dict[dt.date, list[Part]], dict[dt.date, list[Finding]]]:
    """Parts per day (from records and from the part objects present), and findings for
    objects in a day's folder that are no part's object at all."""
    parts: dict[dt.date, list[Part]] = {}
    strays: dict[dt.date, list[Finding]] = defaultdict(list)
    for day in days:
        by_number: dict[int, Part] = {}

        def get(n: int, day: dt.date = day, by_number: dict[int, Part] = by_number) -> Part:
            if n not in by_number:
                by_number[n] = Part(
                    day, n, layout.manifest_key(prefix, day, n), layout.jsonl_key(prefix, day, n)
                )
            return by_number[n]

        for rec in records.get(day, ()):
            if is_integer_seq(rec.get("part")):
                get(int(rec["part"])).record = rec
        for key, obj in objects.get(day, {}).items():
            parsed = layout.parse_part_key(key)
            n = parsed[1] if parsed else None  # of this day: the key comparisons below
            if n is not None and n >= 1 and key == layout.manifest_key(prefix, day, n):
                get(n).manifest_object = obj
            elif n is not None and n >= 1 and key == layout.jsonl_key(prefix, day, n):
                get(n).jsonl_object = obj
            else:
                strays[day].append(
                    Finding(
                        Status.ORPHAN,
                        f"{key} is in the day's folder but is no part's object, and no "
                        "batch record names it",
                    )
                )
        parts[day] = [by_number[n] for n in sorted(by_number)]
    return parts, strays


# Parts whose manifest has been read, and how many there are (a progress bar).
ManifestProgress = Callable[[int, int], None]


def fetch_parts(
    stores: Stores,
    parts: list[Part],
    keys: Sequence[str],
    deep: bool,
    workers: int,
    progress: ManifestProgress | None = None,
) -> None:
    """Download every manifest through the shared part reader (audit/reader.py, which
    checks the signature) and HEAD every events object, concurrently."""
    lock = threading.Lock()
    done = 0

    def load(p: Part) -> None:
        if p.manifest_object is not None:
            # Only the manifest key: verify compares the record itself (checks.py), for
            # parts without a record too.
            loaded = open_part(stores.cold, {"manifestKey": p.manifest_key}, keys)
            defects = {problem.defect for problem in loaded.problems}
            if Defect.MANIFEST_MISSING in defects:
                p.manifest_object = None  # gone since the listing: reported as missing
            else:
                p.manifest_sha256 = loaded.manifest_sha256
                p.manifest = loaded.manifest
                p.signature = _signature(defects)
        if p.jsonl_object is not None and not deep:
            p.head = stores.cold.head(p.jsonl_key)
        if progress is not None:
            nonlocal done
            with lock:
                done += 1
                progress(done, len(parts))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify") as pool:
        list(pool.map(load, parts))


def _signature(defects: set[Defect]) -> SignatureStatus:
    if defects & {Defect.SIGNATURE_MODIFIED, Defect.MANIFEST_UNREADABLE}:
        return SignatureStatus.MODIFIED
    if Defect.SIGNATURE_UNVERIFIABLE in defects:
        return SignatureStatus.UNVERIFIABLE
    return SignatureStatus.VALID

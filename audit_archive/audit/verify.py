"""Verify the archive like an auditor: one status per day, and the findings behind it.

The checks are plain functions over ``Stores``; the CLI (``audit-archive verify``) and
the Dagster job (``audit_verify_job``) only present the :class:`Report`.

What is read, and why:

- **Manifest-only (default).** Every part's manifest is downloaded (they are small; read
  concurrently), its signature checked with the known keys and its sha256 compared with
  the batch record; the day's folder is listed so objects and records can be matched;
  each JSONL.gz is only HEAD-ed: its size is compared, and its SHA-256 too when the
  server keeps the checksum the archiver uploads with. The chain is checked across
  parts and days from the manifests' ``chainEdges`` (the auditor's view: S3 alone),
  plus the few hot events on the other side of a link (the tier boundary).
- **Deep (``--deep``).** Also streams every JSONL.gz (bounded memory: one chunk and one
  line at a time), checks its sha256 and size, re-hashes every event, checks every link
  inside the part, and recomputes ``chainEdges``, the counts, the seq and hash bounds
  and the Merkle root from the content.

Batch records are used for what they are: the archiver's own account of what it wrote
(kept in Mongo, a different trust domain from the bucket). A manifest that disagrees
with its record is ``modified``; records of days outside the requested range provide the
chain's context there, so a narrow range does not cost a full-archive read.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from audit_archive.audit.log_check import check_log
from audit_archive.audit.reader import PartStream
from audit_archive.errors import AuditArchiveError, format_seq_ranges
from audit_archive.format import layout
from audit_archive.format.canonical import HASH_SCHEME, ZERO_HASH, event_hash
from audit_archive.format.chain import HEX64
from audit_archive.format.jsonl import parse_line
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.manifest import MANIFEST_VERSION, SignatureStatus, verify_signature
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.format.note import Verifier
from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores
from audit_archive.stores.cold import b64

MANIFEST_WORKERS = 8  # botocore keeps 10 pooled connections per client
DEEP_WORKERS = 3  # each holds one 1 MiB chunk and one line: memory stays flat
# Without a server-side checksum, an events object whose Last-Modified is this much
# later than its record's archivedAt was rewritten after archiving (clock-skew margin).
REWRITE_MARGIN = dt.timedelta(minutes=10)


MALFORMED_LISTING_MAX = 10_000  # overdue events read to name the malformed among them


class Status(StrEnum):
    VALID = "valid"
    EMPTY = "empty"
    MODIFIED = "modified"
    CHAIN_BREAK = "chain-break"
    UNVERIFIABLE = "unverifiable"
    ORPHAN = "orphan"
    MISSING = "missing"
    OVERDUE = "overdue"
    NOT_DUE = "not-due"


# Most serious first: a day with several findings takes the first of these.
PRECEDENCE: tuple[Status, ...] = (
    Status.MODIFIED,
    Status.CHAIN_BREAK,
    Status.UNVERIFIABLE,
    Status.ORPHAN,
    Status.MISSING,
    Status.OVERDUE,
)
CLEAN: frozenset[Status] = frozenset({Status.VALID, Status.EMPTY, Status.NOT_DUE})


class RangeError(AuditArchiveError):
    """The requested days are not a range of partitions (a usage error, exit 2)."""


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a day; ``kind`` is the status it implies."""

    kind: Status
    message: str
    part: int | None = None
    seqs: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind)}
        if self.part is not None:
            out["part"] = self.part
        if self.seqs:
            out["seqs"] = list(self.seqs)
        out["message"] = self.message
        return out

    def __str__(self) -> str:
        where = f"part {self.part}: " if self.part is not None else ""
        return f"{self.kind}: {where}{self.message}"


def day_status(findings: Iterable[Finding], *, due: bool, parts: int, events: int) -> Status:
    """The day's one status: its most serious finding, else what it holds."""
    kinds = {f.kind for f in findings}
    for status in PRECEDENCE:
        if status in kinds:
            return status
    if parts == 0:
        # A due day without parts always carries a `missing` finding.
        return Status.NOT_DUE if not due else Status.MISSING
    return Status.VALID if events else Status.EMPTY


@dataclass
class DayReport:
    day: str
    due: bool
    findings: list[Finding] = field(default_factory=list)
    parts: int = 0
    events: int = 0

    @property
    def status(self) -> Status:
        return day_status(self.findings, due=self.due, parts=self.parts, events=self.events)

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "status": str(self.status),
            "findings": [f.as_dict() for f in self.findings],
            "parts": self.parts,
            "events": self.events,
        }


@dataclass
class Report:
    days: list[DayReport]
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        return (
            all(d.status in CLEAN for d in self.days)
            and not self.summary.get("strayObjects")
            and not (self.summary.get("log") or {}).get("findings")
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def with_findings(self) -> list[DayReport]:
        return [d for d in self.days if d.status not in CLEAN]

    def as_dict(self) -> dict[str, Any]:
        return {"days": [d.as_dict() for d in self.days], "summary": self.summary}


# -- the range ---------------------------------------------------------------------------


def resolve_range(
    settings: Settings, now: dt.datetime, first: dt.date | None, last: dt.date | None
) -> tuple[dt.date, dt.date]:
    """Default: ARCHIVE_START_DATE to the newest due day. Days before the start are not
    partitions (nothing there is ever archived), so asking for them is a usage error."""
    newest_due = layout.newest_due_day(now, settings.retention_days)
    first = settings.start_date if first is None else first
    last = newest_due if last is None else last
    if first < settings.start_date:
        raise RangeError(
            f"--from {first} is before ARCHIVE_START_DATE ({settings.start_date}): days before "
            "it are not partitions of the archive"
        )
    if last < first:
        raise RangeError(f"--to {last} is before --from {first}")
    return first, last


# -- what is in the bucket and the records ---------------------------------------------------


@dataclass(frozen=True)
class _Object:
    key: str
    size: int
    modified: dt.datetime | None
    algorithms: tuple[str, ...]


@dataclass
class _Part:
    day: str
    part: int
    manifest_key: str
    jsonl_key: str
    record: dict[str, Any] | None = None
    manifest_object: _Object | None = None
    jsonl_object: _Object | None = None
    manifest: dict[str, Any] | None = None  # parsed, or {} when unreadable
    manifest_sha256: str | None = None
    signature: SignatureStatus | None = None
    head: dict[str, Any] | None = None
    unconfirmed: ReadReason | None = None  # the HEAD could not confirm the events object
    findings: list[Finding] = field(default_factory=list)
    edges: list[dict[str, Any]] | None = None  # for the chain walk; None = unknown

    def add(self, kind: Status, message: str, seqs: Sequence[int] = ()) -> None:
        self.findings.append(Finding(kind, message, self.part, tuple(seqs)))

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
    def event_count(self) -> int:
        for source in (self.trusted_manifest, self.record, self.manifest):
            if source and is_integer_seq(source.get("eventCount")):
                return source["eventCount"]
        return 0

    @property
    def seq_range(self) -> tuple[int, int] | None:
        for source in (self.trusted_manifest, self.record):
            lo, hi = (source or {}).get("startSeq"), (source or {}).get("endSeq")
            if is_integer_seq(lo) and is_integer_seq(hi):
                return lo, hi
        return None


def _list_day_folders(
    stores: Stores, first: dt.date, last: dt.date
) -> tuple[dict[str, dict[str, _Object]], list[str]]:
    """Objects under ``<prefix>/day=D/`` for D in [first, last], by day; and keys in that
    key range whose folder is not a day at all."""
    prefix = stores.settings.cold_prefix
    folder = layout.day_prefix(prefix, first)
    root = folder[: folder.rindex("day=") + len("day=")]
    by_day: dict[str, dict[str, _Object]] = defaultdict(dict)
    stray: list[str] = []
    last_text = layout.format_day(last)
    for obj in stores.cold.list_keys(root, start_after=root + layout.format_day(first)):
        key = obj["Key"]
        rest = key[len(root) :]
        day_text = rest[:10]
        if day_text > last_text:
            break
        try:
            layout.parse_day(day_text)
        except ValueError:
            stray.append(key)
            continue
        if rest[10:11] != "/":
            stray.append(key)
            continue
        by_day[day_text][key] = _Object(
            key,
            int(obj.get("Size") or 0),
            obj.get("LastModified"),
            tuple(obj.get("ChecksumAlgorithm") or ()),
        )
    return by_day, stray


def _gather_parts(
    stores: Stores,
    in_range: list[str],
    records: dict[str, list[dict[str, Any]]],
    objects: dict[str, dict[str, _Object]],
) -> tuple[dict[str, list[_Part]], dict[str, list[Finding]]]:
    """Parts per day (from records and from the part objects present), and findings for
    objects in a day's folder that are no part's object at all."""
    prefix = stores.settings.cold_prefix
    parts: dict[str, list[_Part]] = {}
    strays: dict[str, list[Finding]] = defaultdict(list)
    for day in in_range:
        by_number: dict[int, _Part] = {}

        def get(n: int, day: str = day, by_number: dict[int, _Part] = by_number) -> _Part:
            if n not in by_number:
                by_number[n] = _Part(
                    day, n, layout.manifest_key(prefix, day, n), layout.jsonl_key(prefix, day, n)
                )
            return by_number[n]

        for rec in records.get(day, ()):
            if isinstance(rec.get("part"), int):
                get(rec["part"]).record = rec
        for key, obj in objects.get(day, {}).items():
            parsed = layout.parse_part_key(key)
            n = parsed[1] if parsed and parsed[0] == day else None
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


def _fetch(stores: Stores, parts: list[_Part], deep: bool, workers: int) -> None:
    """Download every manifest and HEAD every events object, concurrently."""
    keys = stores.settings.verification_keys

    def load(p: _Part) -> None:
        if p.manifest_object is not None:
            try:
                raw = stores.cold.get_bytes(p.manifest_key)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise
                raw = None  # vanished since the listing: reported like a missing object
                p.manifest_object = None
            if raw is not None:
                p.manifest_sha256 = hashlib.sha256(raw).hexdigest()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                p.manifest = parsed if isinstance(parsed, dict) else {}
                p.signature = verify_signature(p.manifest, keys)
        if p.jsonl_object is not None and not deep:
            p.head = stores.cold.head(p.jsonl_key)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify") as pool:
        list(pool.map(load, parts))


# -- per-part checks ---------------------------------------------------------------------------


def _norm_edges(edges: Any) -> list[tuple[Any, Any, Any]] | None:
    if not isinstance(edges, list):
        return None
    out = []
    for e in edges:
        if not isinstance(e, Mapping) or not is_integer_seq(e.get("seq")):
            return None
        out.append((e["seq"], e.get("prevHash"), e.get("hash")))
    return out


def _manifest_problems(m: Mapping[str, Any]) -> list[str]:
    """Ways a manifest contradicts itself (only a key holder or a bug can sign these)."""
    problems: list[str] = []
    count = m.get("eventCount")
    edges = _norm_edges(m.get("chainEdges"))
    if not is_integer_seq(count) or count < 0:
        return ["eventCount is not a count"]
    if edges is None:
        return ["chainEdges is not a list of {seq, prevHash, hash}"]
    if count == 0:
        for name in ("startSeq", "endSeq", "firstPrevHash", "lastHash", "merkleRoot", "jsonl"):
            if m.get(name) is not None:
                problems.append(f"{name} is set on a part without events")
        if edges:
            problems.append("chainEdges is not empty on a part without events")
        return problems
    lo, hi = m.get("startSeq"), m.get("endSeq")
    if not is_integer_seq(lo) or not is_integer_seq(hi) or lo > hi:
        return ["startSeq/endSeq are not a seq range"]
    if hi - lo + 1 < count:
        problems.append(f"{count} events cannot fit in seq {lo}-{hi}")
    if not edges or len(edges) > count:
        problems.append(f"{len(edges)} chainEdges for {count} events")
    else:
        seqs = [e[0] for e in edges]
        if seqs != sorted(set(seqs)) or seqs[0] != lo or seqs[-1] != hi:
            problems.append("chainEdges do not run from startSeq to endSeq in ascending seq")
        if edges[0][1] != m.get("firstPrevHash"):
            problems.append("the first chain edge's prevHash is not firstPrevHash")
        if edges[-1][2] != m.get("lastHash"):
            problems.append("the last chain edge's hash is not lastHash")
    if not isinstance(m.get("merkleRoot"), str) or not HEX64.match(m["merkleRoot"]):
        problems.append("merkleRoot is not 64 hex characters")
    jsonl = m.get("jsonl")
    if not isinstance(jsonl, Mapping) or not isinstance(jsonl.get("sha256"), str):
        problems.append("jsonl does not describe the events object")
    return problems


def _record_view(m: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's fields under the batch record's names."""
    jsonl = m.get("jsonl") if isinstance(m.get("jsonl"), Mapping) else {}
    return {
        "eventCount": m.get("eventCount"),
        "startSeq": m.get("startSeq"),
        "endSeq": m.get("endSeq"),
        "jsonlKey": jsonl.get("key"),
        "jsonlSha256": jsonl.get("sha256"),
        "bytesCompressed": jsonl.get("bytes", 0),
        "bytesUncompressed": jsonl.get("bytesUncompressed", 0),
        "merkleRoot": m.get("merkleRoot"),
        "chainEdges": _norm_edges(m.get("chainEdges")),
    }


def _check_part(p: _Part, settings: Settings, deep: bool, checksums_kept: bool) -> None:
    """Records against objects, manifests against signatures, records and objects."""
    r = p.record
    if r is not None:
        if r.get("manifestKey") != p.manifest_key:
            p.add(
                Status.ORPHAN,
                f"its batch record names the manifest {r.get('manifestKey')!r}, not "
                f"{p.manifest_key}",
            )
        if r.get("eventCount") and r.get("jsonlKey") != p.jsonl_key:
            p.add(
                Status.ORPHAN,
                f"its batch record names the events object {r.get('jsonlKey')!r}, not "
                f"{p.jsonl_key}",
            )
        if p.manifest_object is None:
            p.add(
                Status.ORPHAN,
                f"its batch record names {p.manifest_key}, which is not in the bucket",
            )
        if r.get("eventCount") and p.jsonl_object is None:
            p.add(
                Status.ORPHAN, f"its batch record names {p.jsonl_key}, which is not in the bucket"
            )
    else:
        for obj in (p.manifest_object, p.jsonl_object):
            if obj is not None:
                p.add(Status.ORPHAN, f"{obj.key} is named by no batch record")

    m = p.manifest
    if p.manifest_object is not None and m is not None:
        if p.signature is SignatureStatus.MODIFIED:
            p.add(
                Status.MODIFIED,
                "the manifest's signature does not verify: it was changed after signing"
                if m
                else "the manifest object is not a JSON manifest",
            )
        elif p.signature is SignatureStatus.UNVERIFIABLE:
            key_id = (m.get("signing") or {}).get("keyId")
            p.add(
                Status.UNVERIFIABLE,
                f"the manifest is signed with key id {key_id}, which is neither "
                "AUDIT_SIGNING_KEY's nor one in AUDIT_SIGNING_KEYS_PREVIOUS",
            )
        if r is not None and p.manifest_sha256 != r.get("manifestSha256"):
            p.add(
                Status.MODIFIED,
                f"{p.manifest_key}'s sha256 differs from its batch record's manifestSha256",
            )
        if m:
            if m.get("version") != MANIFEST_VERSION or m.get("hashScheme") != HASH_SCHEME:
                p.add(
                    Status.UNVERIFIABLE,
                    f"manifest version {m.get('version')!r} with hash scheme "
                    f"{m.get('hashScheme')!r} is not one this verifier knows",
                )
            if m.get("day") != p.day or m.get("part") != p.part:
                p.add(
                    Status.MODIFIED,
                    f"the manifest says day {m.get('day')} part {m.get('part')}, but is "
                    f"stored as day {p.day} part {p.part}",
                )
            problems = _manifest_problems(m)
            if problems:
                p.add(Status.MODIFIED, "the manifest contradicts itself: " + "; ".join(problems))
            if r is not None:
                view = _record_view(m)
                differ = [
                    name
                    for name, value in view.items()
                    if name in r
                    and (_norm_edges(r[name]) if name == "chainEdges" else r[name]) != value
                ]
                if differ:
                    p.add(
                        Status.MODIFIED,
                        "the manifest and its batch record disagree on " + ", ".join(differ),
                    )

    if p.jsonl_object is not None:
        _check_events_object(p, settings, deep, checksums_kept)

    manifest = p.trusted_manifest
    in_place = manifest is not None and (manifest.get("day"), manifest.get("part")) == (
        p.day,
        p.part,
    )
    if manifest is not None and in_place and not _manifest_problems(manifest):
        p.edges = manifest.get("chainEdges")
    elif r is not None and _norm_edges(r.get("chainEdges")) is not None:
        p.edges = r["chainEdges"]  # the archiver's own account, when S3's cannot be used


def _check_events_object(p: _Part, settings: Settings, deep: bool, checksums_kept: bool) -> None:
    obj = p.jsonl_object
    assert obj is not None
    m = p.manifest or {}
    jsonl = m.get("jsonl") if isinstance(m.get("jsonl"), Mapping) else None
    if p.manifest is not None and p.manifest and jsonl is None and p.event_count == 0:
        p.add(Status.ORPHAN, f"{obj.key} exists, but the part's manifest has no events")
        return
    sizes = {
        "its manifest": jsonl.get("bytes") if jsonl else None,
        "its batch record": (p.record or {}).get("bytesCompressed"),
    }
    for whose, size in sizes.items():
        if isinstance(size, int) and size != obj.size:
            p.add(Status.MODIFIED, f"{obj.key} has {obj.size} bytes; {whose} says {size}")
    if deep:
        return  # the sha256 of the bytes read decides
    p.unconfirmed = _why_unconfirmed(p, obj, checksums_kept)


class ReadReason(StrEnum):
    """Why the cheap check could not confirm an events object, so its bytes were read."""

    NO_CHECKSUM = "stored without the SHA-256 checksum the archiver sends"
    REWRITTEN = "Last-Modified is after the record's archivedAt"
    CHECKSUM_DIFFERS = "the server's checksum is not the object's SHA-256"
    PARTS_DIFFER = "the server's multipart checksum names another number of parts"


def _why_unconfirmed(p: _Part, obj: _Object, checksums_kept: bool) -> ReadReason | None:
    """None when the HEAD confirms the object (or nothing suggests it changed); else why
    its bytes must be read before anything is said about it."""
    m = p.manifest or {}
    jsonl = m.get("jsonl") if isinstance(m.get("jsonl"), Mapping) else {}
    record = p.record or {}
    expected = jsonl.get("sha256") or record.get("jsonlSha256")
    reported = (p.head or {}).get("ChecksumSHA256")
    if reported and expected:
        base, _, suffix = reported.partition("-")
        if base == b64(expected):
            return None
        # A multipart upload reports a composite checksum: "-<parts>" on AWS, no suffix
        # on some servers (moto). The record says how the archiver uploaded (jsonlParts);
        # an older record does not, and a missing suffix leaves it open: read the bytes.
        if not suffix:
            return ReadReason.CHECKSUM_DIFFERS
        parts = record.get("jsonlParts")
        if is_integer_seq(parts) and str(parts) != suffix:
            return ReadReason.PARTS_DIFFER
        return None  # a multipart object whose composite cannot be recomputed unread
    if checksums_kept and not reported:
        return ReadReason.NO_CHECKSUM
    archived_at = record.get("archivedAt")
    if (
        isinstance(archived_at, dt.datetime)
        and obj.modified is not None
        and obj.modified > _utc(archived_at) + REWRITE_MARGIN
    ):
        return ReadReason.REWRITTEN
    return None


def _confirm_by_reading(stores: Stores, parts: list[_Part], workers: int) -> dict[str, Any]:
    """Read the bytes of every events object the cheap check left unconfirmed, and
    decide: ``modified`` only when they differ from the manifest or the record."""
    todo = [p for p in parts if p.unconfirmed is not None and not p.tainted]

    def read(p: _Part) -> int:
        sha256, size = stores.cold.read_back_sha256(p.jsonl_key)
        m = p.manifest or {}
        jsonl = m.get("jsonl") if isinstance(m.get("jsonl"), Mapping) else {}
        for whose, expected in (
            ("its manifest", jsonl.get("sha256")),
            ("its batch record", (p.record or {}).get("jsonlSha256")),
        ):
            if expected is not None and expected != sha256:
                p.add(
                    Status.MODIFIED,
                    f"{p.jsonl_key}'s bytes (read because {p.unconfirmed}) differ from "
                    f"{whose}'s sha256",
                )
        return size

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="confirm") as pool:
        sizes = list(pool.map(read, todo))
    reasons: dict[str, int] = {}
    for p in todo:
        reasons[str(p.unconfirmed)] = reasons.get(str(p.unconfirmed), 0) + 1
    return {"objects": len(todo), "bytes": sum(sizes), "reasons": reasons}


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# -- deep: the content ---------------------------------------------------------------------------


@dataclass
class _Gap:
    """Two events adjacent in a part that do not link: foreign events must lie between."""

    after: _Point
    before: _Point


@dataclass
class _DeepResult:
    bytes: int = 0
    gaps: list[_Gap] = field(default_factory=list)


class _CountingCold:
    """The cold store as PartStream reads it, reporting bytes as they arrive."""

    def __init__(self, cold: Any, report: Callable[[int], None]) -> None:
        self._cold = cold
        self._report = report

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        for chunk in self._cold.iter_chunks(key):
            self._report(len(chunk))
            yield chunk


def _deep_check(stores: Stores, p: _Part, report: Callable[[int], None]) -> _DeepResult:
    """Stream one events object and check it against its manifest and record."""
    result = _DeepResult()
    source = (p.day, p.part)
    stream = PartStream(_CountingCold(stores.cold, report), p.jsonl_key)  # type: ignore[arg-type]
    merkle = MerkleBuilder()
    count = uncompressed = 0
    prev: _Point | None = None
    prev_edge = False
    first_prev = last_hash = first_seq = last_seq = None
    edges: list[tuple[Any, Any, Any]] = []
    bad_hash: list[int] = []
    disorder: list[int] = []
    off_day: list[int] = []
    try:
        for line in stream.raw_lines():
            uncompressed += len(line) + 1
            doc = parse_line(line)
            seq, stored = doc.get("seq"), doc.get("hash")
            count += 1
            if event_hash(doc) != stored:
                bad_hash.append(seq)
            at = doc.get("at")
            if not isinstance(at, dt.datetime) or layout.format_day(_utc(at).date()) != p.day:
                off_day.append(seq)
            merkle.add(stored if isinstance(stored, str) and HEX64.match(stored) else ZERO_HASH)
            point = _Point(seq, doc.get("prevHash"), stored, source, p.day)
            edge = False
            if prev is None:
                first_prev, first_seq, edge = point.prev_hash, seq, True
            else:
                if not is_integer_seq(seq) or not is_integer_seq(prev.seq) or seq <= prev.seq:
                    disorder.append(seq)
                if point.prev_hash != prev.hash:
                    prev_edge = edge = True
                    result.gaps.append(_Gap(prev, point))
                if prev_edge:
                    edges.append((prev.seq, prev.prev_hash, prev.hash))
            prev, prev_edge = point, edge
            last_hash, last_seq = stored, seq
        if prev is not None:
            edges.append((prev.seq, prev.prev_hash, prev.hash))
    except (BotoCoreError, ClientError):
        raise  # the store failed us: an error (exit 2), not a finding about the archive
    except Exception as e:  # zlib.error, bad JSON or Extended JSON, a gzip CRC mismatch
        p.add(
            Status.MODIFIED,
            f"{p.jsonl_key} cannot be read as gzip JSONL: {type(e).__name__}: {e}",
        )
        result.bytes = stream.bytes
        result.gaps.clear()
        return result
    result.bytes = stream.bytes
    m = p.manifest or {}
    jsonl = m.get("jsonl") if isinstance(m.get("jsonl"), Mapping) else {}
    for whose, sha in (
        ("its manifest", jsonl.get("sha256")),
        ("its batch record", (p.record or {}).get("jsonlSha256")),
    ):
        if sha is not None and sha != stream.sha256:
            p.add(Status.MODIFIED, f"{p.jsonl_key}'s sha256 differs from {whose}")
    if bad_hash:
        p.add(
            Status.MODIFIED,
            f"{len(bad_hash)} event(s) do not re-hash to their hash: seq {_seqs_text(bad_hash)}",
            _ints(bad_hash),
        )
    if disorder:
        p.add(Status.MODIFIED, f"events are not in ascending seq at seq {_seqs_text(disorder)}")
    if off_day:
        p.add(
            Status.MODIFIED,
            f"{len(off_day)} event(s) have an `at` outside {p.day}: seq {_seqs_text(off_day)}",
            _ints(off_day),
        )
    if not m:
        return result
    content = {
        "eventCount": count,
        "startSeq": first_seq,
        "endSeq": last_seq,
        "firstPrevHash": first_prev,
        "lastHash": last_hash,
        "merkleRoot": merkle.root() if count else None,
        "bytesUncompressed": uncompressed,
    }
    claimed = {
        **{k: m.get(k) for k in content},
        "bytesUncompressed": jsonl.get("bytesUncompressed"),
    }
    differ = [k for k in content if claimed[k] != content[k]]
    if _norm_edges(m.get("chainEdges")) != edges:
        differ.append("chainEdges")
    if differ:
        p.add(Status.MODIFIED, "the manifest does not match the content on " + ", ".join(differ))
    return result


def _ints(seqs: Iterable[Any]) -> tuple[int, ...]:
    return tuple(int(s) for s in seqs if is_integer_seq(s))


def _seqs_text(seqs: Sequence[Any]) -> str:
    ints = sorted(set(_ints(seqs)))
    text = format_seq_ranges(ints[:200]) + (" ..." if len(ints) > 200 else "")
    return text if len(ints) == len(seqs) else f"{text} (and events without an integer seq)"


# -- the chain across parts, days and the hot tier -------------------------------------------


@dataclass(frozen=True)
class _Point:
    """A chained event as the chain needs it, and where it lives (None = hot)."""

    seq: Any
    prev_hash: Any
    hash: Any
    source: tuple[str, int] | None
    day: str | None

    def where(self) -> str:
        if self.source is None:
            return f"seq {self.seq} (hot)"
        return f"seq {self.seq} ({self.source[0]} part {self.source[1]})"


@dataclass(frozen=True)
class _Hole:
    """Content the verifier cannot see: a missing day or part, a part with no usable edges."""

    day: str
    lo: int | None = None
    hi: int | None = None


@dataclass
class _Break:
    message: str
    seqs: tuple[int, ...]
    sides: tuple[_Point, ...]


HotWithin = Callable[[int | None, int | None], tuple[_Point | None, _Point | None]]


def _hot_point(doc: Mapping[str, Any] | None) -> _Point | None:
    if doc is None:
        return None
    at = doc.get("at")
    day = layout.format_day(_utc(at).date()) if isinstance(at, dt.datetime) else None
    return _Point(doc.get("seq"), doc.get("prevHash"), doc.get("hash"), None, day)


class ChainWalk:
    """Checks every link between parts (and with hot) from the parts' chain edges.

    Consecutive edges of different parts must link; where they do not, the hot events
    between them (if any) must link both ways. A gap that content the verifier cannot
    see (a missing day, a part with no usable edges) could fill is not a break: that
    content is reported on its own day.
    """

    def __init__(self, points: list[_Point], holes: list[_Hole], hot_within: HotWithin) -> None:
        self.holes = holes
        self.hot_within = hot_within
        self.breaks: list[_Break] = []
        self.points = self._dedupe(sorted(points, key=lambda p: p.seq))
        self._seqs = [p.seq for p in self.points]

    def _dedupe(self, points: list[_Point]) -> list[_Point]:
        out: list[_Point] = []
        for point in points:
            if out and out[-1].seq == point.seq:
                other = out[-1]
                same = (other.prev_hash, other.hash) == (point.prev_hash, point.hash)
                self.breaks.append(
                    _Break(
                        f"seq {point.seq} is archived in two parts"
                        + ("" if same else ", with different hashes")
                        + f": {other.where()} and {point.where()}",
                        (point.seq,),
                        (other, point),
                    )
                )
                continue
            out.append(point)
        return out

    def explained(self, x: _Point | None, y: _Point | None) -> bool:
        """Could unseen content lie between x and y (either may be an open end)?"""
        for h in self.holes:
            if h.lo is not None and h.hi is not None:
                if (y is None or h.lo < y.seq) and (x is None or h.hi > x.seq):
                    return True
                continue
            days = [p.day for p in (x, y) if p is not None and p.day is not None]
            if not days:
                return True
            lo = min(days) if x is not None else "0000-00-00"
            hi = max(days) if y is not None else "9999-99-99"
            if lo <= h.day <= hi:
                return True
        return False

    def _link(self, x: _Point | None, y: _Point, why: str = "") -> None:
        if x is None:
            if y.prev_hash != ZERO_HASH and not self.explained(None, y):
                self.breaks.append(
                    _Break(
                        f"{y.where()} is the lowest chained event in the archive and hot, yet "
                        "its prevHash is not all zeros: its predecessor is nowhere",
                        _ints([y.seq]),
                        (y,),
                    )
                )
            return
        if y.prev_hash != x.hash and not self.explained(x, y):
            self.breaks.append(
                _Break(
                    f"{y.where()}'s prevHash does not match the hash of {x.where()}, the "
                    f"chained event before it{why}",
                    _ints([x.seq, y.seq]),
                    (x, y),
                )
            )

    def run(self) -> None:
        if not self.points:
            return
        lowest, highest = self.points[0], self.points[-1]
        _, below = self.hot_within(None, lowest.seq)
        self._link(below, lowest)
        for x, y in itertools.pairwise(self.points):
            if y.prev_hash == x.hash:
                continue
            if x.source == y.source:
                # Edges of one part: its own events may lie between (checked by --deep),
                # unless no seq fits between them.
                if is_integer_seq(x.seq) and is_integer_seq(y.seq) and y.seq == x.seq + 1:
                    self._link(x, y, ", and no event can lie between them")
                continue
            first, last = self.hot_within(x.seq, y.seq)
            if first is None or last is None:
                self._link(x, y)
            else:
                self._link(x, first)
                self._link(last, y)
        above, _ = self.hot_within(highest.seq, None)
        if above is not None:
            self._link(highest, above)

    def check_gap(self, gap: _Gap) -> None:
        """A link inside a part that does not hold: events of other parts or hot must lie
        between its two events, each side linking to them."""
        a, b = gap.after, gap.before
        i = bisect.bisect_right(self._seqs, a.seq)
        if i < len(self.points) and self.points[i].seq < b.seq:
            return  # another part's edges lie between; the walk checked their links
        first, last = self.hot_within(a.seq, b.seq)
        if first is None or last is None:
            self._link(a, b, ", and no chained event lies between them")
        else:
            self._link(a, first)
            self._link(last, b)


def _edge_points(edges: Any, source: tuple[str, int]) -> list[_Point]:
    return [
        _Point(e["seq"], e.get("prevHash"), e.get("hash"), source, source[0])
        for e in edges
        if isinstance(e, Mapping) and is_integer_seq(e.get("seq"))
    ]


# -- the whole verification --------------------------------------------------------------------


Progress = Callable[[int, int, int, int], None]  # bytes done, bytes total, parts done, total


def verify(
    stores: Stores,
    first: dt.date | None = None,
    last: dt.date | None = None,
    *,
    now: dt.datetime | None = None,
    deep: bool = False,
    workers: int = MANIFEST_WORKERS,
    deep_workers: int = DEEP_WORKERS,
    progress: Progress | None = None,
    log_verifier: Verifier | None = None,
    trusted_checkpoints: Sequence[tuple[str, bytes]] = (),
) -> Report:
    """Verify every day in [first, last] (default: ARCHIVE_START_DATE to the newest due
    day). Raises RangeError for a range that is not one of partitions."""
    started = time.monotonic()
    settings = stores.settings
    now = now or dt.datetime.now(dt.UTC)
    first, last = resolve_range(settings, now, first, last)
    newest_due = layout.newest_due_day(now, settings.retention_days)
    range_days = [layout.format_day(d) for d in layout.days(first, last)]
    in_range = set(range_days)

    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in stores.hot.records():
        if isinstance(rec.get("day"), str):
            records[rec["day"]].append(rec)
    objects, stray = _list_day_folders(stores, first, last)
    parts_by_day, strays = _gather_parts(stores, range_days, records, objects)
    all_parts = [p for day in range_days for p in parts_by_day[day]]
    _fetch(stores, all_parts, deep, workers)
    # The signed log (SPEC section 7): a part it covers is authenticated without the HMAC key.
    log_verifier = log_verifier or settings.log_verifier
    log_check = None
    if log_verifier is not None:
        log_check = check_log(
            stores,
            log_verifier,
            [r for recs in records.values() for r in recs],
            trusted_checkpoints,
            workers,
        )
        for p in all_parts:
            if (
                p.signature is SignatureStatus.UNVERIFIABLE
                and log_check.authenticated.get((p.day, p.part)) == p.manifest_sha256
            ):
                p.signature = SignatureStatus.VALID
    # The server keeps SHA-256 checksums when any object of the archive has one (the
    # archiver sends one with every PUT): an events object without one was rewritten.
    checksums_kept = any(
        (p.head or {}).get("ChecksumSHA256")
        or any("SHA256" in o.algorithms for o in (p.manifest_object, p.jsonl_object) if o)
        for p in all_parts
    )
    for p in all_parts:
        _check_part(p, settings, deep, checksums_kept)
    confirmed = _confirm_by_reading(stores, all_parts, deep_workers)

    reports: dict[str, DayReport] = {}
    holes: list[_Hole] = []
    for day_text in range_days:
        day = layout.parse_day(day_text)
        parts = parts_by_day[day_text]
        report = DayReport(day_text, due=day <= newest_due)
        report.findings += strays.get(day_text, [])
        report.parts = len(parts)
        report.events = sum(p.event_count for p in parts)
        if report.due and not parts and not objects.get(day_text):
            report.findings.append(
                Finding(Status.MISSING, "a due day with neither a batch record nor any object")
            )
            holes.append(_Hole(day_text))
        numbers = [p.part for p in parts]
        for n in sorted(set(range(1, max(numbers, default=0) + 1)) - set(numbers)):
            report.findings.append(
                Finding(
                    Status.MISSING,
                    f"part {n} is neither recorded nor in the bucket, yet part {max(numbers)} is",
                    n,
                )
            )
            holes.append(_Hole(day_text))
        reports[day_text] = report

    # The chain: parts in range from their manifests; outside it, from batch records.
    points: list[_Point] = []
    for p in all_parts:
        if p.edges is not None:
            points += _edge_points(p.edges, (p.day, p.part))
        elif p.event_count or p.record is None:
            lo_hi = p.seq_range
            holes.append(_Hole(p.day, *(lo_hi or (None, None))))
    highest = max((p.seq_range[1] for p in all_parts if p.seq_range), default=None)
    for day_text, recs in records.items():
        if day_text in in_range:
            continue
        for rec in recs:
            source = (day_text, rec.get("part"))
            if _norm_edges(rec.get("chainEdges")) is not None:
                points += _edge_points(rec["chainEdges"], source)  # type: ignore[arg-type]
            elif rec.get("eventCount"):
                holes.append(_Hole(day_text, rec.get("startSeq"), rec.get("endSeq")))
            if is_integer_seq(rec.get("endSeq")):
                highest = rec["endSeq"] if highest is None else max(highest, rec["endSeq"])
    for day in layout.days(settings.start_date, newest_due):
        day_text = layout.format_day(day)
        if day_text not in in_range and day_text not in records:
            holes.append(_Hole(day_text))  # not verified here: assume the worst

    def hot_within(above: int | None, below: int | None) -> tuple[_Point | None, _Point | None]:
        lo, hi = stores.hot.chained_within(above, below)
        return _hot_point(lo), _hot_point(hi)

    walk = ChainWalk(points, holes, hot_within)
    walk.run()

    bytes_read = 0
    if deep:
        readable = [p for p in all_parts if p.jsonl_object is not None and p.event_count]
        total = sum(p.jsonl_object.size for p in readable if p.jsonl_object)
        lock = threading.Lock()
        state = {"bytes": 0, "parts": 0}

        def advance(n: int, part_done: bool = False) -> None:
            with lock:
                state["bytes"] += n
                state["parts"] += part_done
                snapshot = (state["bytes"], total, state["parts"], len(readable))
            if progress is not None:
                progress(*snapshot)

        def deep_one(p: _Part) -> _DeepResult:
            result = _deep_check(stores, p, advance)
            advance(0, True)
            return result

        if progress is not None:
            progress(0, total, 0, len(readable))
        with ThreadPoolExecutor(max_workers=max(1, deep_workers)) as pool:
            for result in pool.map(deep_one, readable):
                bytes_read += result.bytes
                for gap in result.gaps:
                    walk.check_gap(gap)

    # A break is charged to both sides' days (hot events by their `at`), unless one side
    # is a part already found modified or unverifiable: that explains it.
    by_source = {(p.day, p.part): p for p in all_parts}
    for brk in walk.breaks:
        tainted = [s for s in brk.sides if s.source in by_source and by_source[s.source].tainted]
        for side in tainted or brk.sides:
            day_text, part = side.source if side.source is not None else (side.day, None)
            if day_text in reports:
                finding = Finding(Status.CHAIN_BREAK, brk.message, part, brk.seqs)
                if finding not in reports[day_text].findings:
                    reports[day_text].findings.append(finding)

    for p in all_parts:
        reports[p.day].findings += p.findings
    if log_check is not None:
        for (day_text, part), found in log_check.part_findings.items():
            if day_text in reports:
                for kind, message in found:
                    reports[day_text].findings.append(
                        Finding(Status(kind), f"signed log: {message}", part)
                    )

    due_last = min(last, newest_due)
    if first <= due_last:
        start, end = layout.day_bounds(first)[0], layout.day_bounds(due_last)[1]
        for day, count in stores.hot.chained_days(start, end):
            day_text = layout.format_day(day)
            if day_text in reports:
                # Malformed events (malformed.py) stay in hot for good: name them. Listing
                # reads the day's hot events, so only for a day that is mostly archived.
                malformed = (
                    stores.hot.malformed_day_events(day) if count <= MALFORMED_LISTING_MAX else []
                )
                named = f"; malformed, never archived: {'; '.join(malformed)}" if malformed else ""
                reports[day_text].findings.append(
                    Finding(
                        Status.OVERDUE,
                        f"{count} chained event(s) of this due day are still in hot: re-run "
                        f"the day to archive them{named}",
                    )
                )

    days = [reports[d] for d in range_days]
    counts: dict[str, int] = {}
    for d in days:
        counts[str(d.status)] = counts.get(str(d.status), 0) + 1
    summary: dict[str, Any] = {
        "from": layout.format_day(first),
        "to": layout.format_day(last),
        "newestDueDay": layout.format_day(newest_due),
        "mode": "deep" if deep else "manifests",
        "days": len(days),
        "counts": counts,
        "findings": sum(len(d.findings) for d in days),
        "parts": len(all_parts),
        "events": sum(d.events for d in days),
        "bytesRead": bytes_read + confirmed["bytes"],
        "objectsRead": confirmed,
        "oldestHotSeq": stores.hot.oldest_hot_seq(),
        "highestArchivedSeq": highest,
        "seconds": round(time.monotonic() - started, 3),
    }
    if stray:
        summary["strayObjects"] = stray
    if log_check is not None:
        summary["log"] = log_check.as_dict()
    summary["ok"] = (
        all(d.status in CLEAN for d in days)
        and not stray
        and not (log_check is not None and log_check.findings)
    )
    return Report(days, summary)

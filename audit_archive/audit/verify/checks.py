"""Per-part checks without reading events: records against objects, manifests against
their signature, their record and themselves, and the events object's size and checksum.

An events object the server's checksum cannot confirm is read (its bytes only, as
``--deep`` does for that object alone) before anything is said about it: ``modified``
means proven different.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from audit_archive.audit.verify.parts import Part, StoredObject
from audit_archive.audit.verify.report import ReadReason, Status
from audit_archive.format import layout
from audit_archive.format.canonical import HASH_SCHEME
from audit_archive.format.chain import HEX64
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.manifest import MANIFEST_VERSION, SignatureStatus
from audit_archive.stores.clients import Stores
from audit_archive.stores.cold import UploadLayout, b64

# Without a server-side checksum, an events object whose Last-Modified is this much
# later than its record's archivedAt was rewritten after archiving (clock-skew margin).
REWRITE_MARGIN = dt.timedelta(minutes=10)


def norm_edges(edges: Any) -> list[tuple[int, Any, Any]] | None:
    """chainEdges as (seq, prevHash, hash), or None when they are not a list of edges."""
    if not isinstance(edges, list):
        return None
    out = []
    for e in edges:
        if not isinstance(e, Mapping) or not is_integer_seq(e.get("seq")):
            return None
        out.append((int(e["seq"]), e.get("prevHash"), e.get("hash")))
    return out


def manifest_problems(m: Mapping[str, Any]) -> list[str]:
    """Ways a manifest contradicts itself (only a key holder or a bug can sign these)."""
    problems: list[str] = []
    count = m.get("eventCount")
    edges = norm_edges(m.get("chainEdges"))
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


def record_view(m: Mapping[str, Any]) -> dict[str, Any]:
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
        "chainEdges": norm_edges(m.get("chainEdges")),
    }


def check_part(p: Part, deep: bool, checksums_kept: bool) -> None:
    """Records against objects, manifests against signatures, records and objects; then
    which chain edges the walk may use."""
    check_record(p)
    if p.manifest_object is not None and p.manifest is not None:
        check_manifest(p)
    if p.jsonl_object is not None:
        check_events_object(p, deep, checksums_kept)
    p.edges = usable_edges(p)


def check_record(p: Part) -> None:
    """The batch record names the part's objects, and they are in the bucket."""
    r = p.record
    if r is None:
        for obj in (p.manifest_object, p.jsonl_object):
            if obj is not None:
                p.add(Status.ORPHAN, f"{obj.key} is named by no batch record")
        return
    if r.get("manifestKey") != p.manifest_key:
        p.add(
            Status.ORPHAN,
            f"its batch record names the manifest {r.get('manifestKey')!r}, not {p.manifest_key}",
        )
    if r.get("eventCount") and r.get("jsonlKey") != p.jsonl_key:
        p.add(
            Status.ORPHAN,
            f"its batch record names the events object {r.get('jsonlKey')!r}, not {p.jsonl_key}",
        )
    # A part is recorded only after its objects are confirmed, so no run in progress
    # leaves a recorded part without them: lasting, whoever holds the day's lease.
    if p.manifest_object is None:
        p.add(
            Status.ORPHAN,
            f"its batch record names {p.manifest_key}, which is not in the bucket",
            lasting=True,
        )
    if r.get("eventCount") and p.jsonl_object is None:
        p.add(
            Status.ORPHAN,
            f"its batch record names {p.jsonl_key}, which is not in the bucket",
            lasting=True,
        )


def check_manifest(p: Part) -> None:
    """Signature, bytes against the record, version, place, consistency, record fields."""
    m = p.manifest or {}
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
            f"the manifest is signed with key id {key_id}, which is none of the keys given "
            "(AUDIT_SIGNING_KEY, AUDIT_SIGNING_KEYS_PREVIOUS or --key-file)",
        )
    if p.record is not None and p.manifest_sha256 != p.record.get("manifestSha256"):
        p.add(
            Status.MODIFIED,
            f"{p.manifest_key}'s sha256 differs from its batch record's manifestSha256",
        )
    if not m:
        return
    if m.get("version") != MANIFEST_VERSION or m.get("hashScheme") != HASH_SCHEME:
        p.add(
            Status.UNVERIFIABLE,
            f"manifest version {m.get('version')!r} with hash scheme "
            f"{m.get('hashScheme')!r} is not one this verifier knows",
        )
    if not p.named_by(m):
        p.add(
            Status.MODIFIED,
            f"the manifest says day {m.get('day')} part {m.get('part')}, but is stored as "
            f"day {p.day} part {p.part}",
        )
    problems = manifest_problems(m)
    if problems:
        p.add(Status.MODIFIED, "the manifest contradicts itself: " + "; ".join(problems))
    if p.record is not None:
        differ = [
            name
            for name, value in record_view(m).items()
            if name in p.record
            and (norm_edges(p.record[name]) if name == "chainEdges" else p.record[name]) != value
        ]
        if differ:
            p.add(
                Status.MODIFIED,
                "the manifest and its batch record disagree on " + ", ".join(differ),
            )


def usable_edges(p: Part) -> list[dict[str, Any]] | None:
    """The signed manifest's chainEdges when it is sound and in its place; else the
    record's (the archiver's own account); None when neither can be used."""
    manifest = p.trusted_manifest
    in_place = manifest is not None and p.named_by(manifest)
    if manifest is not None and in_place and not manifest_problems(manifest):
        return manifest.get("chainEdges")
    if p.record is not None and norm_edges(p.record.get("chainEdges")) is not None:
        return p.record["chainEdges"]
    return None


def check_events_object(p: Part, deep: bool, checksums_kept: bool) -> None:
    """Size against manifest and record; without --deep, whether the HEAD confirms it."""
    obj = p.jsonl_object
    assert obj is not None
    jsonl = p.jsonl_meta
    if p.manifest and not jsonl and p.event_count == 0:
        p.add(Status.ORPHAN, f"{obj.key} exists, but the part's manifest has no events")
        return
    sizes = {
        "its manifest": jsonl.get("bytes"),
        "its batch record": (p.record or {}).get("bytesCompressed"),
    }
    for whose, size in sizes.items():
        if is_integer_seq(size) and size != obj.size:
            p.add(Status.MODIFIED, f"{obj.key} has {obj.size} bytes; {whose} says {size}")
    if not deep:  # with --deep, the sha256 of the bytes read decides
        p.unconfirmed = why_unconfirmed(p, obj, checksums_kept)


def why_unconfirmed(p: Part, obj: StoredObject, checksums_kept: bool) -> ReadReason | None:
    """None when the HEAD confirms the object (or nothing suggests it changed); else why
    its bytes must be read before anything is said about it."""
    record = p.record or {}
    expected = p.jsonl_meta.get("sha256") or record.get("jsonlSha256")
    reported = (p.head or {}).get("ChecksumSHA256")
    if reported and expected:
        return _checksum_reason(reported, expected, UploadLayout.from_record(record))
    if checksums_kept and not reported:
        return ReadReason.NO_CHECKSUM
    archived_at = record.get("archivedAt")
    if (
        isinstance(archived_at, dt.datetime)
        and obj.modified is not None
        and obj.modified > layout.as_utc(archived_at) + REWRITE_MARGIN
    ):
        return ReadReason.REWRITTEN
    return None


def _checksum_reason(
    reported: str, expected: str, upload: UploadLayout | None
) -> ReadReason | None:
    """Whether the server's checksum confirms the object. A single PUT keeps the object's
    SHA-256; a multipart upload the SHA-256 of its parts' digests ("-<parts>" appended on
    AWS, not on moto), which the record keeps since jsonlParts/jsonlCompositeSha256 were
    recorded. When that cannot settle it, the bytes are read."""
    base, _, suffix = reported.partition("-")
    if base == b64(expected):
        return None
    if upload is not None:
        if suffix and suffix != str(upload.parts):
            return ReadReason.PARTS_DIFFER
        if upload.composite_sha256 is not None and base == b64(upload.composite_sha256):
            return None
        if upload.parts > 1 and upload.composite_sha256 is None and suffix:
            return None  # AWS's "-<parts>" as recorded; the composite itself was not kept
        return ReadReason.CHECKSUM_DIFFERS
    if suffix:
        return None  # an older record's multipart object: its composite is not recorded
    return ReadReason.CHECKSUM_DIFFERS


def checksums_kept(parts: list[Part]) -> bool:
    """Whether the server keeps SHA-256 checksums: any object of the archive has one (the
    archiver sends one with every PUT), so an events object without one was rewritten."""
    return any(
        (p.head or {}).get("ChecksumSHA256")
        or any("SHA256" in o.algorithms for o in (p.manifest_object, p.jsonl_object) if o)
        for p in parts
    )


def confirm_by_reading(stores: Stores, parts: list[Part], workers: int) -> dict[str, Any]:
    """Read the bytes of every events object the cheap check left unconfirmed, and
    decide: ``modified`` only when they differ from the manifest or the record."""
    todo = [p for p in parts if p.unconfirmed is not None and not p.tainted]

    def read(p: Part) -> int:
        sha256, size = stores.cold.read_back_sha256(p.jsonl_key)
        for whose, expected in p.expected_sha256():
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

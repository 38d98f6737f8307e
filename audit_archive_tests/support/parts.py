"""Archived parts written straight into a test's bucket and batch records with the format
modules, as the archive writes them (SPEC 3 and 4), so readers can be tested on line
forms and shapes before (or regardless of how) the job produces them."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import random
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import bson

from audit_archive.format import layout
from audit_archive.format.canonical import (
    EVENT_CODEC_OPTIONS,
    ZERO_HASH,
    canonical_json,
    event_hash,
)
from audit_archive.format.jsonl import bson_line, parse_line, relaxed_line
from audit_archive.format.manifest import PartSummary, build_manifest, manifest_bytes, sign_manifest
from audit_archive.format.merkle import merkle_root
from audit_archive_dev import seed
from audit_archive_tests.support.harness import KEY_A, Harness

LineForm = Literal["auto", "bson", "relaxed"]


def chain_events(
    day: dt.date,
    n: int,
    *,
    first_seq: int = 1,
    prev_hash: str = ZERO_HASH,
    payloads: Iterable[Mapping[str, Any]] = (),
    seed_value: int = 7,
) -> list[dict[str, Any]]:
    """``n`` chained events of ``day``; the i-th payload (if any) is merged into the i-th
    event before it is hashed."""
    rng = random.Random(seed_value)
    extra = list(payloads)
    docs = []
    for i, doc in enumerate(
        seed.chain(
            seed.day_times(day, n, rng),
            first_seq=first_seq,
            prev_hash=prev_hash,
            rng=rng,
            gap_rate=0,
        )
    ):
        if i < len(extra):
            doc.update(extra[i])
        # Hashed as MongoDB gives it back (a {"$ref", "$id"} object comes back a DBRef).
        doc = bson.decode(bson.encode(doc, codec_options=EVENT_CODEC_OPTIONS), EVENT_CODEC_OPTIONS)
        doc["prevHash"] = docs[-1]["hash"] if docs else prev_hash
        doc["hash"] = event_hash(doc)
        docs.append(doc)
    return docs


def reads_back(doc: Mapping[str, Any]) -> bool:
    """Whether the document's Relaxed Extended JSON line reads back as itself (SPEC 3)."""
    try:
        back = parse_line(relaxed_line(doc))
    except (ValueError, TypeError, bson.errors.BSONError):
        return False
    return canonical_json(back) == canonical_json(doc)


def line_of(doc: Mapping[str, Any], form: LineForm = "auto") -> bytes:
    if form == "bson" or (form == "auto" and not reads_back(doc)):
        return bson_line(bson.encode(doc, codec_options=EVENT_CODEC_OPTIONS))
    return relaxed_line(doc).encode("utf-8")


def write_part(
    h: Harness,
    day: dt.date,
    part: int,
    docs: list[dict[str, Any]],
    *,
    key: str = KEY_A,
    form: LineForm = "auto",
) -> dict[str, Any]:
    """Upload the part's events object and signed manifest and insert its batch record
    (returned). Events must be of ``day``, in seq order."""
    prefix, day_text = h.settings.cold_prefix, layout.format_day(day)
    body = gzip.compress(b"".join(line_of(d, form) for d in docs), mtime=0)
    uncompressed = len(gzip.decompress(body))
    jsonl_key = layout.jsonl_key(prefix, day_text, part)
    ends = [docs[0], docs[-1]] if len(docs) > 1 else docs[:1]
    summary = PartSummary(
        day=day_text,
        part=part,
        event_count=len(docs),
        start_seq=docs[0]["seq"],
        end_seq=docs[-1]["seq"],
        first_prev_hash=docs[0]["prevHash"],
        last_hash=docs[-1]["hash"],
        chain_edges=[{"seq": d["seq"], "prevHash": d["prevHash"], "hash": d["hash"]} for d in ends],
        merkle_root=merkle_root([d["hash"] for d in docs]),
        jsonl_key=jsonl_key,
        jsonl_sha256=hashlib.sha256(body).hexdigest(),
        jsonl_bytes=len(body),
        jsonl_bytes_uncompressed=uncompressed,
    )
    raw_manifest = manifest_bytes(sign_manifest(build_manifest(summary), key))
    manifest_key = layout.manifest_key(prefix, day_text, part)
    h.s3.put_object(Bucket=h.bucket, Key=jsonl_key, Body=body)
    h.s3.put_object(Bucket=h.bucket, Key=manifest_key, Body=raw_manifest)
    record = {
        "day": day_text,
        "part": part,
        "archivedAt": dt.datetime.now(dt.UTC),
        "runId": "test",
        "startSeq": summary.start_seq,
        "endSeq": summary.end_seq,
        "eventCount": len(docs),
        "jsonlKey": jsonl_key,
        "manifestKey": manifest_key,
        "jsonlSha256": summary.jsonl_sha256,
        "manifestSha256": hashlib.sha256(raw_manifest).hexdigest(),
        "bytesCompressed": len(body),
        "bytesUncompressed": uncompressed,
    }
    h.batches.insert_one(dict(record))
    return record

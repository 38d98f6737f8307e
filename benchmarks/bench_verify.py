"""Benchmark: ``audit-archive verify`` over a year of archived days.

    python benchmarks/bench_verify.py [--days 365] [--events 40] [--json]

Starts the embedded SecantusDB and moto servers, seeds ``--days`` consecutive due days
of ``--events`` chained events each and archives them, then times ``verify`` over all
of them: manifest-only (the default; concurrent manifest reads) and ``--deep`` (every
events object streamed and re-hashed). Both must report every day ``valid``.

The archive is built by writing each day's part with the same pure modules the archiver
uses (JSONL writer, Merkle builder, manifest signer) and uploading it with its SHA-256
checksum and batch record, because the archive job's own cost grows with the archive
(measure that with bench_archive.py); ``--via-archiver`` uses the archiver's six steps
instead. ``verify --deep`` recomputes everything from the content, so a wrongly built
part would show as a finding and fail the benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

from audit_archive.archive import steps
from audit_archive.audit.verify import verify
from audit_archive.format import layout
from audit_archive.format.jsonl import GzipJsonlWriter, relaxed_line
from audit_archive.format.manifest import (
    PartSummary,
    build_manifest,
    key_id,
    manifest_bytes,
    sign_manifest,
)
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive_dev import seed
from audit_archive_dev.embedded import create_bucket, start_stack

KEY = "bench-signing-key-not-for-production-0123456789"
RETENTION = 90


def archive_day(stores, day: dt.date, now: dt.datetime) -> None:
    s = stores.settings
    extracted = steps.extract(stores, day, f"bench-{day}", now)
    assert not isinstance(extracted, steps.Skip), extracted
    encoded = steps.encode(extracted, s.cold_prefix, s.purge_batch_size)
    signed = steps.sign(encoded, s.cold_prefix, s.signing_key.get_secret_value())
    uploaded = steps.upload_and_confirm(stores, encoded, signed)
    recorded = steps.record(stores, encoded, signed, uploaded, "bench")
    steps.purge(stores, recorded)


def build_day(stores, day: dt.date, events: list[dict]) -> None:
    """One part as the archiver writes it (events contiguous in the chain: one day each)."""
    s = stores.settings
    day_text = layout.format_day(day)
    path = Path(s.work_dir) / f"{day_text}.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    merkle = MerkleBuilder()
    with GzipJsonlWriter(path) as writer:
        for e in events:
            writer.write_line(relaxed_line(e))
            merkle.add(e["hash"])
        written = writer.close()
    edges = [{"seq": e["seq"], "prevHash": e["prevHash"], "hash": e["hash"]} for e in events]
    summary = PartSummary(
        day=day_text,
        part=1,
        event_count=len(events),
        start_seq=events[0]["seq"] if events else None,
        end_seq=events[-1]["seq"] if events else None,
        first_prev_hash=events[0]["prevHash"] if events else None,
        last_hash=events[-1]["hash"] if events else None,
        chain_edges=[edges[0], edges[-1]] if len(edges) > 1 else edges,
        merkle_root=merkle.root() if events else None,
        jsonl_key=layout.jsonl_key(s.cold_prefix, day, 1) if events else None,
        jsonl_sha256=written.sha256 if events else None,
        jsonl_bytes=written.bytes if events else 0,
        jsonl_bytes_uncompressed=written.bytes_uncompressed if events else 0,
    )
    data = manifest_bytes(sign_manifest(build_manifest(summary), s.signing_key.get_secret_value()))
    manifest_key = layout.manifest_key(s.cold_prefix, day, 1)
    if events:
        stores.cold.put_file(
            summary.jsonl_key, str(path), written.bytes, written.sha256, "application/gzip"
        )
    stores.cold.put_bytes(manifest_key, data, "application/json")
    stores.batches.insert_record(
        {
            "day": day_text,
            "part": 1,
            "archivedAt": dt.datetime.now(dt.UTC).replace(microsecond=0),
            "runId": "bench",
            "startSeq": summary.start_seq,
            "endSeq": summary.end_seq,
            "eventCount": summary.event_count,
            "jsonlKey": summary.jsonl_key,
            "manifestKey": manifest_key,
            "jsonlSha256": summary.jsonl_sha256,
            "manifestSha256": hashlib.sha256(data).hexdigest(),
            "bytesCompressed": summary.jsonl_bytes,
            "bytesUncompressed": summary.jsonl_bytes_uncompressed,
            "merkleRoot": summary.merkle_root,
            "chainEdges": summary.chain_edges,
            "keyId": key_id(s.signing_key.get_secret_value()),
        }
    )
    path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--events", type=int, default=40, help="events per day")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--via-archiver", action="store_true", help="build with the archiver's six steps"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="audit-verify-bench-"))
    stack = start_stack(log_dir=workdir)
    try:
        now = dt.datetime.now(dt.UTC)
        last = layout.newest_due_day(now, RETENTION)
        first = last - dt.timedelta(days=args.days - 1)
        env = {
            **stack.env(database="verifybench", bucket="verify-bench"),
            "AUDIT_SIGNING_KEY": KEY,
            "AUDIT_HOT_RETENTION_DAYS": str(RETENTION),
            "AUDIT_WORK_DIR": str(workdir / "work"),
            "ARCHIVE_START_DATE": layout.format_day(first),
        }
        os.environ.update(env)
        create_bucket(stack.s3_endpoint, env["AUDIT_COLD_BUCKET"])
        rng = random.Random(1)
        client = MongoClient(env["MONGODB_URI"], tz_aware=True)
        ats = seed.history(first, last, rng, per_day=(args.events, args.events))
        stores = open_stores(Settings.from_env())
        started = time.monotonic()
        if args.via_archiver:
            seed.append(client["verifybench"]["auditevents"], ats, rng=rng)
            for day in layout.days(first, last):
                archive_day(stores, day, now)
        else:
            by_day: dict[dt.date, list[dict]] = {}
            for doc in seed.chain(ats, rng=rng):
                by_day.setdefault(doc["at"].date(), []).append(doc)
            for day in layout.days(first, last):
                build_day(stores, day, by_day.get(day, []))
        archived_s = time.monotonic() - started

        results: dict[str, object] = {
            "days": args.days,
            "events_per_day": args.events,
            "archive_s": round(archived_s, 1),
        }
        for mode, deep in (("manifests", False), ("deep", True)):
            t0 = time.monotonic()
            report = verify(stores, first, last, deep=deep)
            seconds = time.monotonic() - t0
            assert report.ok, [d.as_dict() for d in report.with_findings()][:3]
            results[f"verify_{mode}_s"] = round(seconds, 2)
            results[f"verify_{mode}_bytes_read"] = report.summary["bytesRead"]
        stores.close()
        client.close()
    finally:
        stack.stop()
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

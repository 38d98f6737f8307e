"""Benchmark: ``audit-archive restore`` of one archived day, events per second.

    python benchmarks/bench_restore.py [--events 20000] [--json]

Starts the embedded SecantusDB and moto servers, seeds one due day of ``--events``
chained events, archives it with the archiver's steps, then times:

- ``restore``: restore.restore_day into an empty collection (check every part, then
  unordered bulk inserts): the path users take;
- ``restore_again``: the same day again into the same collection (every document is
  already there, so each is compared canonically: the idempotent path);
- ``upsert_old_write_only``: the write phase restore used before (``replace_one(upsert=True)`` per
  document in unordered bulk batches) over the same documents into another empty
  collection, for the ratio; its check phase is not counted, so the ratio is generous
  to it.

Each reports wall time and events per second, and the CPU seconds of the client and of
both servers: ``events_per_cpu_s`` (events per CPU-second of all three) is what the
machine gives the work when it has the machine to itself, whatever else runs on it.

Every restored collection is compared with the archived day (count and canonical
content), so a fast but wrong restore fails the benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, ReplaceOne

from audit_archive.archive import steps
from audit_archive.audit import restore
from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, canonical_json
from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores, open_stores
from audit_archive_dev import seed
from audit_archive_dev.embedded import Stack, create_bucket, start_stack

KEY = "bench-signing-key-not-for-production-0123456789"
RETENTION = 90
DATABASE = "restorebench"
RAW = EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument)


def archive_day(stores: Stores, day: dt.date, now: dt.datetime) -> None:
    s = stores.settings
    extracted = steps.extract(stores, day, f"bench-{day}", now)
    assert not isinstance(extracted, steps.Skip), extracted
    encoded = steps.encode(extracted, s.cold_prefix, s.purge_batch_size)
    signed = steps.sign(encoded, s.cold_prefix, s.signing_key.get_secret_value())
    uploaded = steps.upload_and_confirm(stores, encoded, signed)
    recorded = steps.record(stores, encoded, signed, uploaded, "bench")
    steps.purge(stores, recorded)


def cpu_seconds(pid: int | None = None) -> float:
    """user+sys CPU seconds of this process (None) or of a server process."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time and CPU of the client and of both servers over one measured work."""

    def __init__(self, stack: Stack) -> None:
        self.pids = {"client": None, "mongo": stack.mongo.process.pid, "s3": stack.s3.process.pid}

    def __enter__(self) -> Meter:
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = {n: cpu_seconds(pid) - self.cpu[n] for n, pid in self.pids.items()}

    def report(self, name: str, events: int) -> dict[str, float]:
        cpu = sum(self.cpu.values())
        return {
            f"{name}_wall_s": round(self.wall, 2),
            f"{name}_events_per_s": round(events / self.wall),
            **{f"{name}_cpu_{n}_s": round(v, 2) for n, v in self.cpu.items()},
            # Events per CPU-second of client and servers together: what the machine
            # gives when the work has it to itself (load on a shared machine aside).
            f"{name}_events_per_cpu_s": round(events / cpu) if cpu else 0,
        }


def fingerprint(client: MongoClient, collection: str) -> set[bytes]:
    coll = client[DATABASE].get_collection(collection, codec_options=EVENT_CODEC_OPTIONS)
    return {canonical_json(doc) for doc in coll.find({})}


def upsert_old(client: MongoClient, docs: list[RawBSONDocument], target: str, batch: int) -> None:
    """The former write phase: one upsert per document, in unordered bulks."""
    coll = client[DATABASE][target]
    for i in range(0, len(docs), batch):
        ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs[i : i + batch]]
        coll.bulk_write(ops, ordered=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in the day")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="audit-restore-bench-"))
    stack = start_stack(log_dir=workdir)
    try:
        now = dt.datetime.now(dt.UTC)
        day = layout.newest_due_day(now, RETENTION)
        env = {
            **stack.env(database=DATABASE, bucket="restore-bench"),
            "AUDIT_SIGNING_KEY": KEY,
            "AUDIT_HOT_RETENTION_DAYS": str(RETENTION),
            "AUDIT_WORK_DIR": str(workdir / "work"),
        }
        os.environ.update(env)
        create_bucket(stack.s3_endpoint, env["AUDIT_COLD_BUCKET"])
        client = MongoClient(env["MONGODB_URI"], tz_aware=True)
        rng = random.Random(1)
        seed.append(client[DATABASE]["auditevents"], seed.day_times(day, args.events, rng), rng=rng)
        stores = open_stores(Settings.from_env())
        archive_day(stores, day, now)
        assert client[DATABASE]["auditevents"].count_documents({}) == 0, "archived and purged"

        results: dict[str, float] = {"events": args.events, "load_average": os.getloadavg()[0]}
        for name in ("restore", "restore_again"):
            with Meter(stack) as meter:
                result = restore.restore_day(stores, day, "restored")
            assert result.events == args.events, result
            assert result.inserted == (args.events if name == "restore" else 0), result
            results.update(meter.report(name, args.events))
        archived = fingerprint(client, "restored")
        assert len(archived) == args.events

        docs = list(client[DATABASE].get_collection("restored", codec_options=RAW).find({}))
        with Meter(stack) as meter:
            upsert_old(client, docs, "upserted", restore.WRITE_BATCH)
        assert fingerprint(client, "upserted") == archived
        results.update(meter.report("upsert_old_write_only", args.events))
        results["restore_vs_upsert_old_per_cpu_s"] = round(
            results["restore_events_per_cpu_s"] / results["upsert_old_write_only_events_per_cpu_s"],
            1,
        )
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

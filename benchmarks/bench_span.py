"""Benchmark: a day's cost follows its own events, not its seq span (issue 15).

    python benchmarks/bench_span.py [--own 200] [--foreign 40000] [--million] [--repeat 3] [--json]

Archives, side by side in one process on the same embedded servers (SecantusDB and
moto, each in its own process), ``--repeat`` due days of ``--own`` events in each of
three shapes, and reports the median run of each shape (and every run's wall time):

- ``compact``: each day's events are consecutive in the chain;
- ``spanning``: each day's last half was chained after ``--foreign`` events of a later
  day (late events), so those lie between its seqs;
- ``spanning_1m`` (with ``--million``): the same with 1,000,000 foreign events. They
  carry only the chain's fields (seq, at, prevHash, hash) to keep seeding within minutes;
  the archive reads none of them but the two next to the day's own events.

For each run: the wall time of ``audit_archive_job`` for the day (end to end, in process, an
untimed warm-up run first), the commands it sent about the events and the documents
SecantusDB examined for them (audit_archive_tests/support/querycount.py: every document
the index selects for the filter's first indexed field), and the time in the
neighbour search (``neighbours``, audit_archive.timing). Ratios are against ``compact``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-span-signing-key-0123456789abcdef0123456789"
RETENTION = 90
INSERT_BATCH = 5_000


def _env(mongo_port: int, s3_port: int, name: str, work_dir: str) -> dict[str, str]:
    return {
        "MONGODB_URI": f"mongodb://127.0.0.1:{mongo_port}/{name}",
        "AUDIT_COLD_ENDPOINT": f"http://127.0.0.1:{s3_port}",
        "AUDIT_COLD_BUCKET": f"b-{name.replace('_', '-')}",
        "AUDIT_COLD_ACCESS_KEY": "testing",
        "AUDIT_COLD_SECRET_KEY": "testing",
        "AUDIT_SIGNING_KEY": KEY,
        "AUDIT_HOT_RETENTION_DAYS": str(RETENTION),
        "AUDIT_WORK_DIR": work_dir,
    }


def _bare_chain(ats: Iterable[dt.datetime], first_seq: int, prev_hash: str) -> Iterator[dict]:
    """Chained events with only the chain's fields (the million foreign events)."""
    from bson import ObjectId

    from audit_archive.format.canonical import event_hash

    for i, at in enumerate(ats):
        doc = {"_id": ObjectId(), "seq": first_seq + i, "at": at, "prevHash": prev_hash}
        doc["hash"] = prev_hash = event_hash(doc)
        yield doc


def _seed(
    collection: Any, days: list[dt.date], own: int, foreign: int, bare: bool, rng
) -> list[tuple[int, dt.datetime]]:
    """``days`` of ``own`` events each. Compact (no foreign events): one day after the
    other. Spanning: the first half of every day, then ``foreign`` events of the day
    after the last one, then the second halves, so each day's span holds them all. Then
    20 more of the next day's (so the last day has a successor, as in production).
    Returns every event's (seq, at), for counting what the server examined."""
    from audit_archive.format.canonical import ZERO_HASH
    from audit_archive_dev import seed
    from audit_archive_tests.support import shapes

    nxt = days[-1] + dt.timedelta(days=1)
    mine = [seed.day_times(day, own, rng) for day in days]
    half = own // 2
    if foreign:
        segments = [("real", [at for ats in mine for at in ats[:half]])]
        segments.append(("bare" if bare else "real", seed.day_times(nxt, foreign, rng)))
        segments.append(("real", [at for ats in mine for at in ats[half:]]))
    else:
        segments = [("real", [at for ats in mine for at in ats])]
    segments.append(("real", seed.day_times(nxt, 20, rng)))
    keys: list[tuple[int, dt.datetime]] = []
    tail = (1, ZERO_HASH)
    for kind, ats in segments:
        if kind == "bare":
            docs: Iterable[dict] = _bare_chain(ats, *tail)
        else:
            docs = shapes.chain(ats, rng, gap_rate=0.03, after=tail)
        batch: list[dict] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) == INSERT_BATCH:
                collection.insert_many(batch, ordered=False)
                batch = []
            keys.append((doc["seq"], doc["at"]))
            tail = doc["seq"] + 1, doc["hash"]
        if batch:
            collection.insert_many(batch, ordered=False)
    return keys


def _measure(
    shape: str, own: int, foreign: int, bare: bool, repeat: int, ports: tuple[int, int], tmp: Path
) -> dict[str, Any]:
    """Seed ``repeat`` days of the shape, archive them one by one; the median run."""
    from pymongo import MongoClient

    from audit_archive import timing
    from audit_archive.format import layout
    from audit_archive.settings import Settings
    from audit_archive.stores.database import HotDatabase
    from audit_archive_dev.embedded import create_bucket
    from audit_archive_tests.support.querycount import counting

    env = _env(*ports, shape, str(tmp / shape))
    os.environ.update(env)
    # Loaded with the variables set (the first time), so the resources read them when
    # each run starts, as a deployment's code location does.
    from audit_archive.definitions import defs

    settings = Settings.from_env(env)
    create_bucket(env["AUDIT_COLD_ENDPOINT"], env["AUDIT_COLD_BUCKET"])
    client = MongoClient(env["MONGODB_URI"])
    newest = layout.newest_due_day(dt.datetime.now(dt.UTC), RETENTION)
    days = [newest - dt.timedelta(days=repeat + 2 - i) for i in range(repeat)]
    started = time.perf_counter()
    events = client.get_database()[settings.events_collection]
    keys = _seed(events, days, own, foreign, bare, random.Random(15))
    HotDatabase(
        client, settings.database, settings.events_collection, settings.batches_collection
    ).ensure_indexes()
    seeded = time.perf_counter() - started
    job = defs.resolve_job_def("audit_archive_job")
    runs = []
    for day in days:
        timing.reset()
        with counting(settings.events_collection) as queries:
            started = time.perf_counter()
            result = job.execute_in_process(
                partition_key=layout.format_day(day), raise_on_error=False
            )
            wall = time.perf_counter() - started
        if not result.success:
            failures = [str(e.message) for e in result.all_events if e.is_failure]
            raise SystemExit(f"{shape}: the run failed: {failures}")
        runs.append(
            {
                "wall_s": round(wall, 3),
                "neighbours_s": round(timing.snapshot().get("neighbours", 0.0), 4),
                "commands": queries.commands,
                "documents_examined": queries.examined({"seq": s, "at": a} for s, a in keys),
            }
        )
        keys = [(s, a) for s, a in keys if a.date() != day]  # archived and purged
    records = list(client.get_database()[settings.batches_collection].find({}))
    client.close()
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return {
        "shape": shape,
        "own_events": records[0]["eventCount"],
        "foreign_events_in_span": foreign,
        "seed_s": round(seeded, 1),
        **median,
        "wall_s_runs": [r["wall_s"] for r in runs],
    }


def run(own: int, foreign: int, million: bool, repeat: int = 3) -> dict[str, Any]:
    from audit_archive_dev.embedded import start_mongo, start_s3

    os.environ["AUDIT_SIGNING_KEY"] = KEY  # the definitions check it when they load
    tmp = Path(tempfile.mkdtemp(prefix="bench-span-"))
    mongo = start_mongo(log_path=tmp / "mongo.log")
    s3 = start_s3(log_path=tmp / "moto.log")
    try:
        ports = (mongo.port, s3.port)
        _measure("warmup", 20, 0, False, 1, ports, tmp)  # imports, first run's start-up
        shapes = [("compact", 0, False), ("spanning", foreign, False)]
        if million:
            shapes.append(("spanning_1m", 1_000_000, True))
        rows = []
        for shape, n, bare in shapes:
            print(f"{shape}: seeding {own} own + {n:,} foreign events ...", file=sys.stderr)
            rows.append(_measure(shape, own, n, bare, repeat, ports, tmp))
            print(f"  {json.dumps(rows[-1])}", file=sys.stderr)
    finally:
        mongo.stop()
        s3.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["wall_vs_compact"] = round(row["wall_s"] / base["wall_s"], 2)
        row["examined_vs_compact"] = round(
            row["documents_examined"] / base["documents_examined"], 2
        )
    return {"rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--own", type=int, default=200, help="the day's own events")
    parser.add_argument("--foreign", type=int, default=40_000, help="other events in its span")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 in its span")
    parser.add_argument("--repeat", type=int, default=3, help="days of each shape (median)")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    args = parser.parse_args()
    out = run(args.own, args.foreign, args.million, args.repeat)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    columns = (
        "shape",
        "own_events",
        "foreign_events_in_span",
        "wall_s",
        "wall_s_runs",
        "wall_vs_compact",
        "neighbours_s",
        "commands",
        "documents_examined",
        "examined_vs_compact",
    )
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in out["rows"]:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

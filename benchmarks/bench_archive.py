"""Benchmark: the archive job against the floor and the naive baseline, on the same data.

    python benchmarks/bench_archive.py --events 100000 [--payload plain|rich|mixed] [--json]

Seeds one due day with N chained events of realistic size (audit_archive_dev.seed: nested
actor/target/meta, 400-700 bytes of JSON each) and measures, each in its own subprocess
so that CPU time and peak memory are its own, on a freshly seeded copy of the same events:

- ``floor``: the least any archiver must ask of the server: one bare cursor over the
  day's events (raw batches, nothing decoded) and one ``delete_many`` of the day;
- ``archive``: ``audit_archive_job`` for that day, end to end including the purge;
- ``naive``: Airflow's ``MongoToS3Operator`` pattern: ``json_util.dumps(list(cursor))``,
  ``gzip.compress`` in memory, one PUT, then ``delete_many`` of the day.

Mongo and S3 run in their own processes: the embedded SecantusDB and moto servers by
default, or the MongoDB named by ``MONGODB_URI`` and the S3 named by ``AUDIT_COLD_*``
(endpoint, region, bucket, keys) when those are set. Against a real MongoDB the benchmark
uses its own databases (``auditbench_floor``, ``auditbench_archive``, ``auditbench_naive``,
dropped before and after) and, in S3, its own prefix (its objects are removed afterwards).

``cpu_s`` is user+sys of the measured work only; interpreter start and imports (and, for
the archive, loading the Dagster definitions) go in ``startup_cpu_s``. ``peak_rss_mib`` is
the child's peak resident set (VmHWM); ``startup_rss_mib`` is its peak before the work.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

KINDS = ("floor", "archive", "naive")
PAYLOADS = ("plain", "rich", "mixed", "flat", "every")
RETENTION_DAYS = 90
EVENTS_COLLECTION = "auditevents"
BATCHES_COLLECTION = "archivebatches"
BENCH_KEY = "benchmark-signing-key-not-a-secret-0123456789abcdef"
SPEC_VARIABLE = "AUDIT_BENCH_SPEC"
INSERT_BATCH = 5000


# -- the children: one measured piece of work each ------------------------------------


def _rusage_cpu(r: resource.struct_rusage) -> float:
    return r.ru_utime + r.ru_stime


def _peak_rss_mib(usage: resource.struct_rusage) -> float:
    """This process's peak resident set: VmHWM where Linux has it. ``ru_maxrss`` is
    carried over from the parent across exec, so a child started by a bigger parent
    would report the parent's peak; it is the fallback elsewhere (KiB on Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(usage.ru_maxrss / 1024, 1)


def _measure(setup: Callable[[], Callable[[], dict[str, Any]]]) -> dict[str, Any]:
    """Run ``setup`` (imports, connections), then time the work it returns."""
    work = setup()
    before = resource.getrusage(resource.RUSAGE_SELF)
    startup_rss = _peak_rss_mib(before)
    started = time.perf_counter()
    extra = work()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(_rusage_cpu(after) - _rusage_cpu(before), 3),
        "startup_cpu_s": round(_rusage_cpu(before), 3),
        "peak_rss_mib": _peak_rss_mib(after),
        "startup_rss_mib": startup_rss,
        **extra,
    }


def _day_filter(spec: dict[str, Any]) -> dict[str, Any]:
    from audit_archive.format import layout
    from audit_archive.stores.events import day_filter

    return day_filter(layout.parse_day(spec["day"]))


def _count_raw(batch: bytes) -> int:
    """Documents in a raw batch (concatenated BSON), by their length prefixes."""
    count = pos = 0
    while pos < len(batch):
        pos += int.from_bytes(batch[pos : pos + 4], "little")
        count += 1
    return count


def _floor(spec: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    from pymongo import MongoClient

    client = MongoClient(spec["uri"])
    collection = client.get_database()[EVENTS_COLLECTION]
    client.admin.command("ping")
    flt = _day_filter(spec)

    def work() -> dict[str, Any]:
        read = sum(_count_raw(batch) for batch in collection.find_raw_batches(flt))
        deleted = collection.delete_many(flt).deleted_count
        return {"read": read, "deleted": deleted}

    return work


def archive_job() -> Any:
    """The job as the code location defines it, rebuilt by module and function name like a
    run worker's (Dagster's public ``build_reconstructable_job``)."""
    from audit_archive.definitions import defs

    return defs.get_job_def("audit_archive_job")


def _archive(spec: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The run as a deployment's run worker executes it: the job reconstructed from the
    code location, a persistent instance (SQLite run and event storage in a directory,
    as ``dagster dev`` keeps it), the job's own IO manager and executor. Not
    ``execute_in_process``: it swaps the default IO manager for an in-memory one and
    keeps the event log in memory, which hides part of what a run costs."""
    os.environ.update(spec["archive_env"])
    from dagster import DagsterInstance, build_reconstructable_job, execute_job

    from audit_archive import timing
    from audit_archive.format import nativecodec

    # The job's executor is in-process: the switch holds for its steps.
    nativecodec.ENABLED = spec.get("native", True)

    job = build_reconstructable_job(Path(__file__).stem, archive_job.__name__)
    job.get_definition()  # the code location loaded, as a run worker does before the run
    # A deployment's instance outlives its runs: created (storage schema and all) here.
    Path(spec["dagster_home"]).mkdir(parents=True, exist_ok=True)
    # With the project's instance settings a run worker gets from dagster.yaml
    # (python_logs: the run's event log keeps INFO and above).
    import yaml

    project = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    instance = DagsterInstance.local_temp(
        spec["dagster_home"], overrides={"python_logs": project["python_logs"]}
    )
    instance.get_runs(limit=1)

    def work() -> dict[str, Any]:
        timing.reset()
        started = time.perf_counter()
        result = execute_job(job, instance=instance, tags={"dagster/partition": spec["day"]})
        wall = time.perf_counter() - started
        if not result.success:
            failures = [str(e.message) for e in result.all_events if e.is_failure]
            raise SystemExit(f"archive run failed: {failures}")
        phases = {k: round(v, 3) for k, v in timing.snapshot().items()}
        phases["other"] = round(max(0.0, wall - sum(phases.values())), 3)
        logged = instance.get_records_for_run(result.run_id, limit=10_000).records
        entries = [r.event_log_entry for r in logged]
        kinds = Counter(e.dagster_event_type or "LOG_MESSAGE" for e in entries)
        messages = [e.user_message[:120] for e in entries if e.dagster_event_type is None]
        return {
            "phases": phases,
            "run_events": len(logged),
            "run_event_kinds": dict(kinds),
            "run_log_messages": messages[:40],
        }

    return work


def _naive(spec: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    import gzip

    from bson import json_util
    from pymongo import MongoClient

    client = MongoClient(spec["uri"])
    collection = client.get_database()[EVENTS_COLLECTION]
    client.admin.command("ping")
    s3 = _s3_client(spec["s3"])
    flt = _day_filter(spec)
    key = f"{spec['prefix']}/naive/{spec['day']}.json.gz"

    def work() -> dict[str, Any]:
        # The MongoToS3Operator pattern: the whole result in one string, gzip in memory,
        # one PUT; then what an archiver must add, deleting what it moved.
        docs = list(collection.find(flt))
        data = json_util.dumps(docs).encode("utf-8")
        body = gzip.compress(data)
        s3.put_object(Bucket=spec["s3"]["bucket"], Key=key, Body=body)
        deleted = collection.delete_many(flt).deleted_count
        return {
            "deleted": deleted,
            "bytes_uncompressed": len(data),
            "bytes_compressed": len(body),
        }

    return work


def _profiled(setup: Callable[[], Callable[[], dict[str, Any]]], path: str):
    """``setup`` whose work runs under cProfile timed by the process's CPU time (where the
    CPU goes; waiting on the servers is not counted), the stats written to ``path`` (the
    figures of a profiled run are the profiler's too: use it to find hot spots only)."""
    import cProfile

    def profiled_setup() -> Callable[[], dict[str, Any]]:
        work = setup()

        def profiled_work() -> dict[str, Any]:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on servers
            try:
                return profiler.runcall(work)
            finally:
                profiler.dump_stats(path)

        return profiled_work

    return profiled_setup


def child_main(kind: str) -> int:
    spec = json.loads(os.environ[SPEC_VARIABLE])
    setup = {"floor": _floor, "archive": _archive, "naive": _naive}[kind]
    measured = lambda: setup(spec)  # noqa: E731
    if spec.get("profile_dir"):
        measured = _profiled(measured, os.path.join(spec["profile_dir"], f"{kind}.prof"))
    print(json.dumps(_measure(measured)), flush=True)
    return 0


# -- the parent: servers, seeding, the three runs -------------------------------------


def _s3_client(s3: dict[str, Any]):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3.get("endpoint") or None,
        region_name=s3.get("region") or "us-east-1",
        aws_access_key_id=s3.get("access_key") or None,
        aws_secret_access_key=s3.get("secret_key") or None,
        config=Config(s3={"addressing_style": "path" if s3.get("endpoint") else "auto"}),
    )


def _with_database(uri: str, database: str) -> str:
    """The same server and credentials, another database (authSource kept)."""
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    old = parts.path.lstrip("/")
    if "@" in parts.netloc and "authSource" not in query:
        query["authSource"] = old or "admin"
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", urlencode(query), ""))


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _rich(rng: random.Random) -> dict[str, Any]:
    """The BSON types that JSON does not have, as applications store them: an amount as
    Decimal128, a device UUID (Binary subtype 4), a byte count as Int64, a recorded
    Regex, an oplog Timestamp and a non-finite double."""
    from bson import Decimal128, Int64, Regex, Timestamp
    from bson.binary import Binary

    return {
        "amount": Decimal128(f"{rng.randint(0, 10**9)}.{rng.randint(0, 99):02d}"),
        "device": Binary(rng.randbytes(16), 4),
        "bytesIn": Int64(rng.getrandbits(40)),
        "pattern": Regex(f"^user{rng.randint(1, 500)}@", "i"),
        "opTime": Timestamp(1_700_000_000 + rng.randint(0, 10**6), rng.randint(1, 50)),
        "score": rng.choice([float("nan"), float("inf"), float("-inf")]),
    }


def _payload(kind: str, index: int, rng: random.Random) -> dict[str, Any]:
    """What ``--payload`` adds to event ``index``: nothing (``plain``), the rare types
    (``rich``), or every other event rich and one in a hundred a recorded query filter
    that Extended JSON would misread (``mixed``: read back, written as a bson line)."""
    if kind == "rich" or (kind == "mixed" and index % 2):
        return _rich(rng)
    if kind == "mixed" and index % 100 == 0:
        return {"filter": {"email": {"$regex": "@example\\.com$", "$options": "i"}}}
    return {}


def _shaped(kind: str, doc: dict[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    """Event ``index`` in the payload's shape, without its hash (chained by the caller).

    ``flat``: a few top-level keys, nothing nested (what many producers write: who did
    what, with which result); ``every``: those keys and one value of every BSON type
    (support/samples.py: nested documents and arrays, dates at both ends of the range,
    Decimal128, Code with scope, DBRef, MinKey, ...); the others: the seed's nested
    event (~480 B of BSON) and what ``_payload`` adds."""
    if kind in ("flat", "every"):
        shaped = {
            "_id": doc["_id"],
            "seq": doc["seq"],
            "at": doc["at"],
            "source": doc["source"],
            "action": doc["action"],
            "actor": doc["actor"]["id"],
            "result": doc["meta"]["result"],
        }
        if kind == "every":
            from audit_archive_tests.support.samples import EVERY_BSON_TYPE

            shaped.update(EVERY_BSON_TYPE)
        shaped["prevHash"] = doc["prevHash"]
        return shaped
    shaped = {k: v for k, v in doc.items() if k != "hash"}
    shaped.update(_payload(kind, index, rng))
    return shaped


def _generate(path: Path, events: int, day: dt.date, seed_value: int, payload: str) -> int:
    """N chained events of the day as raw BSON in a file (so every copy is identical)."""
    import bson
    from bson import ObjectId

    from audit_archive.format.canonical import event_hash
    from audit_archive_dev import seed

    rng = random.Random(seed_value)
    ats = seed.day_times(day, events, rng)
    size = 0
    prev_hash = None
    with open(path, "wb") as f:
        for index, doc in enumerate(seed.chain(ats, rng=rng)):
            doc["_id"] = ObjectId(rng.randbytes(12))  # not in the hash; deterministic ids
            shaped = _shaped(payload, doc, index, rng)
            if len(shaped) != len(doc) - 1 or prev_hash is not None:  # re-chained from here
                shaped["prevHash"] = prev_hash or doc["prevHash"]
                shaped["hash"] = event_hash(shaped)
                prev_hash = shaped["hash"]
            else:  # the seed's own event, hash and all
                shaped = doc
            raw = bson.encode(shaped)
            size += len(raw)
            f.write(raw)
    return size


def _raw_batches(path: Path, size: int) -> Iterator[list[Any]]:
    import bson
    from bson.raw_bson import RawBSONDocument

    batch: list[Any] = []
    with open(path, "rb") as f:
        for doc in bson.decode_file_iter(f, bson.CodecOptions(document_class=RawBSONDocument)):
            batch.append(doc)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _seed_copy(uri: str, events_file: Path, events: int) -> None:
    """A fresh database holding the day's events, with the archive's indexes."""
    from pymongo import MongoClient

    from audit_archive.stores.database import HotDatabase

    client = MongoClient(uri)
    try:
        db = client.get_database()
        client.drop_database(db.name)
        inserted = 0
        for batch in _raw_batches(events_file, INSERT_BATCH):
            db[EVENTS_COLLECTION].insert_many(batch, ordered=False)
            inserted += len(batch)
            if inserted % 200_000 == 0:
                _log(f"  inserted {inserted:,} of {events:,}")
        # Indexes after the load (faster to seed); the archive's run finds them in place,
        # as it does in production after its first run.
        HotDatabase(client, db.name, EVENTS_COLLECTION, BATCHES_COLLECTION).ensure_indexes()
        count = db[EVENTS_COLLECTION].estimated_document_count()
        if count != events:
            raise SystemExit(f"seeding {db.name}: {count} events in hot, expected {events}")
    finally:
        client.close()


def _settle(uri: str, timeout: float = 600) -> None:
    """Wait until the server answers new connections promptly, three times in a row:
    after a bulk load and index builds it may still be busy (checkpoints, oplog pruning),
    which would be charged to the next measurement (or time out its first connection)."""
    from pymongo import MongoClient

    deadline = time.monotonic() + timeout
    prompt = 0
    while prompt < 3 and time.monotonic() < deadline:
        started = time.monotonic()
        client = MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000))
        try:  # a ping: SecantusDB answers even find_one({}) only after a whole scan
            client.admin.command("ping")
        finally:
            client.close()
        prompt = prompt + 1 if time.monotonic() - started < 0.5 else 0
        time.sleep(0.2)


def _run_child(kind: str, spec: dict[str, Any], log_path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "ARCHIVE_"))}
    env.pop("MONGODB_URI", None)
    env[SPEC_VARIABLE] = json.dumps(spec)
    with open(log_path, "ab") as log:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", kind],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            check=False,
        )
    lines = proc.stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{kind} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


def _check_purged(uri: str, day: str) -> int:
    from pymongo import MongoClient

    client = MongoClient(uri)
    try:
        return client.get_database()[EVENTS_COLLECTION].count_documents(_day_filter({"day": day}))
    finally:
        client.close()


def _archive_record(uri: str) -> dict[str, Any]:
    from pymongo import MongoClient

    client = MongoClient(uri)
    try:
        records = list(client.get_database()[BATCHES_COLLECTION].find({}, {"_id": 0}))
    finally:
        client.close()
    if len(records) != 1:
        raise SystemExit(f"archive: expected one batch record, found {len(records)}")
    return records[0]


def _machine(mongo_label: str, s3_label: str) -> dict[str, Any]:
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mongo": mongo_label,
        "s3": s3_label,
    }


def _ratio(a: dict[str, Any], b: dict[str, Any], measure: str) -> float | None:
    """a's measure over b's, or None when either was not run (--only)."""
    if measure not in a or not b.get(measure):
        return None
    return round(a[measure] / b[measure], 3)


def run(
    events: int,
    seed_value: int,
    kinds: tuple[str, ...] = KINDS,
    profile_dir: str | None = None,
    payload: str = "plain",
    native: bool = True,
) -> dict[str, Any]:
    from audit_archive.format import layout
    from audit_archive_dev.embedded import create_bucket, start_mongo, start_s3

    servers = []
    tmp = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    run_id = uuid.uuid4().hex[:8]
    try:
        external_mongo = os.environ.get("MONGODB_URI")
        mongo_label = (
            "external (MONGODB_URI)"
            if external_mongo
            else "SecantusDB (embedded, own process, a fresh one per measurement)"
        )
        if os.environ.get("AUDIT_COLD_ENDPOINT") or os.environ.get("AUDIT_COLD_BUCKET"):
            s3 = {
                "endpoint": os.environ.get("AUDIT_COLD_ENDPOINT", ""),
                "region": os.environ.get("AUDIT_COLD_REGION", "us-east-1"),
                "bucket": os.environ.get("AUDIT_COLD_BUCKET", "dezky-audit"),
                "access_key": os.environ.get("AUDIT_COLD_ACCESS_KEY", ""),
                "secret_key": os.environ.get("AUDIT_COLD_SECRET_KEY", ""),
            }
            s3_label = "external (AUDIT_COLD_*)"
        else:
            moto = start_s3(log_path=tmp / "moto.log")
            servers.append(moto)
            endpoint = f"http://127.0.0.1:{moto.port}"
            s3 = {
                "endpoint": endpoint,
                "region": "us-east-1",
                "bucket": "auditbench",
                "access_key": "testing",
                "secret_key": "testing-secret-key",
            }
            create_bucket(endpoint, s3["bucket"])
            s3_label = "moto server (embedded, own process)"
        prefix = f"auditbench-{run_id}"
        if s3_label.startswith("external"):
            s3["prefix"] = prefix  # removed again afterwards
        day = layout.newest_due_day(dt.datetime.now(dt.UTC), RETENTION_DAYS)
        day_text = layout.format_day(day)
        uris: dict[str, str] = {}

        _log(f"generating {events:,} chained events ({payload} payload) for {day_text}")
        events_file = tmp / "events.bson"
        raw_bytes = _generate(events_file, events, day, seed_value, payload)

        results: dict[str, Any] = {}
        record: dict[str, Any] = {}
        for kind in kinds:
            mongo = None
            if external_mongo:
                mongo_uri = external_mongo
            else:  # nothing left over from the previous measurement (deletes, oplog)
                # A cache that holds a million-event day (the default is 1G).
                mongo = start_mongo(
                    log_path=tmp / f"secantus-{kind}.log", extra_args=["--cache-size", "4G"]
                )
                servers.append(mongo)
                mongo_uri = f"mongodb://127.0.0.1:{mongo.port}/x?directConnection=true"
            uris[kind] = _with_database(mongo_uri, f"auditbench_{kind}")
            _log(f"seeding a fresh copy for {kind}")
            _seed_copy(uris[kind], events_file, events)
            spec = {
                "uri": uris[kind],
                "day": day_text,
                "s3": s3,
                "prefix": prefix,
                "profile_dir": profile_dir,
                "native": native,  # the C encoder (nativecodec.ENABLED) in the archive run
                "dagster_home": str(tmp / f"dagster-{kind}"),
                "archive_env": {
                    "MONGODB_URI": uris[kind],
                    "AUDIT_EVENTS_COLLECTION": EVENTS_COLLECTION,
                    "AUDIT_BATCHES_COLLECTION": BATCHES_COLLECTION,
                    "AUDIT_COLD_ENDPOINT": s3["endpoint"],
                    "AUDIT_COLD_REGION": s3["region"],
                    "AUDIT_COLD_BUCKET": s3["bucket"],
                    "AUDIT_COLD_ACCESS_KEY": s3["access_key"],
                    "AUDIT_COLD_SECRET_KEY": s3["secret_key"],
                    "AUDIT_COLD_PREFIX": prefix,
                    "AUDIT_SIGNING_KEY": BENCH_KEY,
                    "AUDIT_HOT_RETENTION_DAYS": str(RETENTION_DAYS),
                    "AUDIT_WORK_DIR": str(tmp / "work"),
                    "ARCHIVE_START_DATE": day_text,
                },
            }
            _settle(uris[kind])
            _log(f"running {kind}")
            results[kind] = _run_child(kind, spec, tmp / f"{kind}.log")
            left = _check_purged(uris[kind], day_text)
            if left:
                raise SystemExit(f"{kind}: {left} events of {day_text} are still in hot")
            if kind == "archive":
                record = _archive_record(uris["archive"])
                if record["eventCount"] != events:
                    raise SystemExit(f"archive recorded {record['eventCount']} events")
            _log(f"  {kind}: {results[kind]['wall_s']}s wall, {results[kind]['cpu_s']}s cpu")
            if mongo is not None:
                mongo.stop()
                servers.remove(mongo)
        floor, archive, naive = (results.get(kind, {}) for kind in KINDS)
        return {
            "events": events,
            "payload": payload,
            "day": day_text,
            "bytes_bson": raw_bytes,
            "bytes_uncompressed": record.get("bytesUncompressed"),
            "bytes_compressed": record.get("bytesCompressed"),
            **results,
            "ratios": {
                "archive_wall_vs_floor": _ratio(archive, floor, "wall_s"),
                "archive_cpu_vs_naive": _ratio(archive, naive, "cpu_s"),
                "archive_rss_vs_naive": _ratio(archive, naive, "peak_rss_mib"),
            },
            "cpu_us_per_event": {
                kind: round(results[kind]["cpu_s"] / events * 1e6, 1) for kind in results
            },
            "machine": _machine(mongo_label, s3_label),
            "command": "python benchmarks/bench_archive.py " + " ".join(sys.argv[1:]),
        }
    finally:
        _cleanup(
            servers,
            uris if "uris" in locals() else {},
            s3 if "s3" in locals() else None,
            bool(os.environ.get("MONGODB_URI")),
        )
        shutil.rmtree(tmp, ignore_errors=True)


def _cleanup(
    servers: list[Any], uris: dict[str, str], s3: dict[str, Any] | None, external_mongo: bool
) -> None:
    """Embedded servers go with their data; on external ones, what the benchmark made."""
    for server in servers:
        server.stop()
    if external_mongo:
        _drop_databases(uris)
    if s3 is not None and s3.get("prefix"):  # set for an external S3 only
        _delete_prefix(s3)


def _drop_databases(uris: dict[str, str]) -> None:
    with contextlib.suppress(Exception):
        from pymongo import MongoClient

        for uri in uris.values():
            client = MongoClient(uri)
            client.drop_database(client.get_database().name)
            client.close()


def _delete_prefix(s3: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):
        client = _s3_client(s3)
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=s3["bucket"], Prefix=s3["prefix"] + "/"
        )
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents") or ()]
            if keys:
                client.delete_objects(Bucket=s3["bucket"], Delete={"Objects": keys})


def _print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['events']:,} events ({result['payload']} payload) of {result['day']}: "
        f"{result['bytes_uncompressed'] or 0:,} B JSONL -> {result['bytes_compressed'] or 0:,} B gzip"
    )
    print(f"{'':8} {'wall s':>8} {'cpu s':>8} {'cpu us/ev':>9} {'peak MiB':>9} {'startup cpu':>11}")
    for kind in KINDS:
        if kind not in result:
            continue
        r = result[kind]
        print(
            f"{kind:8} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} "
            f"{result['cpu_us_per_event'][kind]:>9.1f} {r['peak_rss_mib']:>9.1f} "
            f"{r['startup_cpu_s']:>11.2f}"
        )
    if "archive" in result:
        phases = result["archive"]["phases"]
        print("archive phases (s): " + ", ".join(f"{k} {v}" for k, v in phases.items()))
    print("ratios: " + ", ".join(f"{k} {v}" for k, v in result["ratios"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events in the day (N)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the events")
    parser.add_argument(
        "--payload",
        choices=PAYLOADS,
        default="plain",
        help="plain: JSON-born types; rich: plus Decimal128, a UUID, Int64, Regex, Timestamp "
        "and a non-finite double in every event; mixed: every other event rich, and one in "
        "a hundred a query filter written as a bson line; flat: a few top-level keys, "
        "nothing nested; every: those keys and one value of every BSON type",
    )
    parser.add_argument(
        "--only",
        default=",".join(KINDS),
        help="comma-separated subset of floor,archive,naive (default: all three)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run each measured work under cProfile and write DIR/<kind>.prof (read them "
        "with python -m pstats; a profiled run's figures are inflated by the profiler)",
    )
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if not args.events or args.events < 1:
        parser.error("--events N (N >= 1) is required")
    kinds = tuple(k for k in KINDS if k in args.only.split(","))
    if not kinds:
        parser.error(f"--only takes a comma-separated subset of {','.join(KINDS)}")
    profile_dir = None
    if args.profile:
        profile_dir = str(Path(args.profile).resolve())
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
    result = run(args.events, args.seed, kinds, profile_dir, args.payload)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

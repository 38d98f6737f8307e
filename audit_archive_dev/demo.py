"""``./dev demo``: the archive end to end on the embedded default, in one command.

Starts SecantusDB and an S3 server on free loopback ports, seeds three weeks of
realistic chained events on both sides of the retention window (empty days, late
events, gaps in seq), runs audit_archive_job for every due day, and prints where
everything went.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from tabulate import tabulate

from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS
from audit_archive_dev import seed
from audit_archive_dev.demowitness import DemoWitness
from audit_archive_dev.embedded import create_bucket, start_stack
from audit_archive_dev.logkey import KEY_FILE, log_env

DEMO_KEY = "demo-signing-key-not-for-production-0123456789"
# Without --verbose the runs log warnings and errors only: the table is the demo's output
# (each run's DEBUG events are ~30 lines, over 600 for the demo).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def plural(n: int, word: str) -> str:
    """``1 part``, ``2 parts``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def seed_demo(
    client: MongoClient, database: str, newest_due: dt.date, rng: random.Random
) -> dict[str, Any]:
    """Two weeks that are due and one that is not: {"first", "last", "counts" per day}."""
    first = newest_due - dt.timedelta(days=13)
    last = newest_due + dt.timedelta(days=7)
    empty = [first + dt.timedelta(days=4), first + dt.timedelta(days=9)]
    late = [(first + dt.timedelta(days=2), 3), (first + dt.timedelta(days=6), 2)]
    ats = seed.history(first, last, rng, per_day=(60, 240), empty_days=empty, late=late)
    seed.append(client[database]["auditevents"], ats, rng=rng, gap_rate=0.04)
    counts: dict[str, int] = {}
    for at in ats:
        key = layout.format_day(at.date())
        counts[key] = counts.get(key, 0) + 1
    return {"first": first, "last": last, "counts": counts}


def _chain_tail(client: MongoClient) -> tuple[int, str]:
    """Next seq and prevHash: the chain's tail may already be archived, so look at both
    the hot collection and the batch records' chain edges."""
    db = client["dezky"]
    tails = [
        (d["seq"], d["hash"])
        for d in db.auditevents.find({"hash": {"$type": "string"}}).sort("seq", -1).limit(1)
    ]
    for record in db.archivebatches.find({}, {"chainEdges": 1}):
        tails += [(e["seq"], e["hash"]) for e in record.get("chainEdges") or ()]
    seq, last_hash = max(tails)
    return seq + 1, last_hash


def audit_as_auditor(env: dict[str, str], workdir: Path, newest_due: dt.date) -> bool:
    """What an auditor holding only the public verifier key sees: verify, then one proof
    checked offline (no HMAC key, no log signing key in this environment)."""
    from audit_archive.audit.prove import check_proof, prove_seq
    from audit_archive.audit.verify import verify
    from audit_archive.format.note import parse_verifier
    from audit_archive.format.proof import describe
    from audit_archive.settings import Settings
    from audit_archive.stores.clients import open_stores

    secret = ("AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEYS_PREVIOUS", "AUDIT_LOG_SIGNING_KEY")
    auditor_env = {k: v for k, v in env.items() if k not in secret}
    stores = open_stores(Settings.from_env(auditor_env, require_signing_key=False))
    try:
        report = verify(stores, last=newest_due)
        log = report.summary.get("log") or {}
        print(
            f"\nauditor with only the verifier key: verify {'ok' if report.ok else 'FINDINGS'} "
            f"({report.summary['counts']}); signed log checkpoint size "
            f"{log.get('checkpointSize')}, root {log.get('checkpointRoot')}"
        )
        record = stores.batches.collection.find_one({"eventCount": {"$gt": 0}}, sort=[("day", 1)])
        document = prove_seq(stores, record["startSeq"])
    finally:
        stores.close()
    witnesses = [
        w.verifier for w in Settings.from_env(auditor_env, require_signing_key=False).log_witnesses
    ]
    print(
        f"cosigned head: size {log.get('witnessedSize')}, cosigned by "
        f"{', '.join(log.get('witnesses') or ()) or 'no witness'}"
    )
    check = check_proof(document, (), parse_verifier(env["AUDIT_LOG_VERIFIER_KEY"]), witnesses, 1)
    print(
        f"proof of seq {record['startSeq']} checked offline with the witness's key: {describe(check)}"
    )
    return report.ok and check.ok


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The arguments, and the runs' config: quiet unless --verbose."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed for the demo data")
    parser.add_argument(
        "--verbose", action="store_true", help="show every run's Dagster events (DEBUG)"
    )
    args = parser.parse_args(argv)
    if args.verbose:
        return args, {}
    # Dagster's beta/preview notices about its own APIs are not the demo's news.
    warnings.filterwarnings("ignore", module=r"dagster(\.|$)")
    warnings.filterwarnings("ignore", message=r".*(beta|preview|experimental)", category=Warning)
    return args, QUIET_RUN_CONFIG


DEMO_COLUMNS = ("day", "status", "part", "events", "seq range", "bytes", "object")
DEMO_ALIGN = ("left", "left", "right", "right", "left", "right", "left")


def _print_table(db, seeded: dict[str, Any], newest_due: dt.date) -> dict[tuple[str, int], Any]:
    """One line per day and part: status, part, events, seq range, bytes, object."""
    records = {(r["day"], r["part"]): r for r in db.archivebatches.find()}
    rows = []
    for day in layout.days(seeded["first"], seeded["last"]):
        key = layout.format_day(day)
        parts = sorted(p for (d, p) in records if d == key)
        if not parts:
            start, end = layout.day_bounds(day)
            hot = db.auditevents.count_documents({"at": {"$gte": start, "$lt": end}})
            due = day <= newest_due
            rows.append(
                (key, "MISSING" if due else "hot", "", hot, "", "", "" if due else "(in MongoDB, not due yet)")
            )  # fmt: skip
            continue
        for part in parts:
            r = records[(key, part)]
            seqs = f"{r['startSeq']}-{r['endSeq']}" if r["eventCount"] else "-"
            obj = r["jsonlKey"] or r["manifestKey"] + " (empty day)"
            rows.append(
                (key, "archived", part, r["eventCount"], seqs, r["bytesCompressed"], f"s3://dezky-audit/{obj}")
            )  # fmt: skip
    table = tabulate(rows, headers=DEMO_COLUMNS, tablefmt="plain", colalign=DEMO_ALIGN)
    print("\n".join(line.rstrip() for line in table.splitlines()))
    return records


def main(argv: list[str] | None = None) -> int:
    args, run_config = _parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="audit-archive-demo-"))
    print("starting the embedded MongoDB (SecantusDB) and S3 (moto) servers ...")
    stack = start_stack(log_dir=workdir)
    witness: DemoWitness | None = None
    try:
        env = {
            **stack.env(database="dezky", bucket="dezky-audit"),
            "AUDIT_SIGNING_KEY": DEMO_KEY,
            "AUDIT_HOT_RETENTION_DAYS": "90",
            "AUDIT_WORK_DIR": str(workdir / "work"),
            **log_env(workdir),  # the signed log, with a key made in the data folder
        }
        now = dt.datetime.now(dt.UTC)
        newest_due = layout.newest_due_day(now, 90)
        env["ARCHIVE_START_DATE"] = layout.format_day(newest_due - dt.timedelta(days=13))
        witness = DemoWitness(workdir, env)  # nothing leaves hot until it cosigned the head
        env.update(witness.env_entries)
        os.environ.update(env)
        create_bucket(stack.s3_endpoint, env["AUDIT_COLD_BUCKET"])
        client = MongoClient(env["MONGODB_URI"], tz_aware=True)
        seeded = seed_demo(client, "dezky", newest_due, random.Random(args.seed))
        total = sum(seeded["counts"].values())
        print(
            f"seeded {total:,} chained events from {seeded['first']} to {seeded['last']} "
            f"(newest due day: {newest_due}; retention 90 days)"
        )
        print(f"MongoDB {stack.mongo_uri_base}/dezky   S3 {stack.s3_endpoint}/dezky-audit")
        print(
            f"signed log key made in {workdir / KEY_FILE}; auditors verify with\n"
            f"  AUDIT_LOG_VERIFIER_KEY={env['AUDIT_LOG_VERIFIER_KEY']}\n"
            f"demo witness at {witness.server.url}; its key for verify/check-proof --witness:\n"
            f"  {witness.signer.verifier.key_string}\n"
        )

        # Imported here: the definitions read ARCHIVE_START_DATE when they load.
        from audit_archive.definitions import defs

        job = defs.resolve_job_def("audit_archive_job")
        started = time.monotonic()
        failures = 0
        for day in layout.days(seeded["first"], newest_due):
            result = job.execute_in_process(
                partition_key=layout.format_day(day), raise_on_error=False, run_config=run_config
            )
            failures += not result.success
        # Late events: ingested after their day was archived; a re-run makes them part 2.
        late_day = seeded["first"] + dt.timedelta(days=3)
        seed.append(
            client["dezky"]["auditevents"],
            seed.day_times(late_day, 4, random.Random(args.seed + 1)),
            rng=random.Random(args.seed + 2),
            after=_chain_tail(client),
        )
        result = job.execute_in_process(
            partition_key=layout.format_day(late_day), raise_on_error=False, run_config=run_config
        )
        failures += not result.success
        print(
            f"4 late events for {late_day} arrived after it was archived; re-running it made part 2\n"
        )
        elapsed = time.monotonic() - started

        db = client.get_database("dezky", codec_options=EVENT_CODEC_OPTIONS)
        records = _print_table(db, seeded, newest_due)
        left_due = db.auditevents.count_documents({"at": {"$lt": layout.day_bounds(newest_due)[1]}})
        print(
            f"\narchived {plural(len(records), 'part')} of "
            f"{plural(len({d for d, _ in records}), 'day')} in {elapsed:.1f}s; "
            f"due events left in hot: {left_due:,}; runs failed: {failures}"
        )
        print("each part: <prefix>/day=D/part-000N.jsonl.gz + .manifest.json (HMAC-SHA-256 signed)")
        auditor_ok = audit_as_auditor(env, workdir, newest_due)
        return 1 if failures or left_due or not auditor_ok else 0
    finally:
        if witness is not None:
            witness.stop()
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())

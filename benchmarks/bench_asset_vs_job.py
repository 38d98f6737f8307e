"""Benchmark: a day materialized from the asset page against a run of audit_archive_job.

    python benchmarks/bench_asset_vs_job.py [--days 6] [--events-per-day 200] [--json]

Issue 21: the asset page's Materialize (Dagster's implicit asset job, ``__ASSET_JOB``)
ran the six ops with Dagster's multiprocess executor, one process per op: 43.8 s for a
day the job archives in 2-3 s. The embedded servers and ``dagster dev`` (the repo's
dagster.yaml) are started, 2N small due days seeded, and the days are launched through
GraphQL one at a time, alternating: what the asset page sends (``__ASSET_JOB`` with the
asset selected and the day as a tag) and what the job's Launchpad sends
(``audit_archive_job`` with the day). Each run must succeed; per kind, medians of:

- ``per_day_seconds``: from the launch until the run ended (queue, run worker start,
  the run): what an operator waits for;
- ``run_seconds``: the run's own start to end;
- ``step_processes``: how many processes the steps ran in (1: in-process).

and the ratio asset/job of each median (target: within 20 %, issue 21).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dagster_graphql import DagsterGraphQLClient  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from audit_archive.format import layout  # noqa: E402
from audit_archive_dev.due_days import seed_due_days  # noqa: E402
from audit_archive_dev.embedded import free_port, start_stack  # noqa: E402
from audit_archive_dev.ui import start_dagster, stop_group, wait_until_serving  # noqa: E402

JOB = "audit_archive_job"
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status creationTime
  startTime endTime } } }"""
LOGS = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  __typename ... on MessageEvent { message } } } } }"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6, help="days of each kind")
    parser.add_argument("--events-per-day", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.json else print

    work = Path(tempfile.mkdtemp(prefix="bench-asset-job-"))
    stack = start_stack(log_dir=work)
    dagster = None
    try:
        due, env = seed_due_days(stack, work, 2 * args.days, args.events_per_day)
        days = [layout.format_day(d) for d in due]
        say(f"seeded {args.events_per_day} events on each of {len(days)} due days")
        port = free_port()
        dagster = start_dagster(work / "home", port, env)
        if not wait_until_serving(port, dagster):
            raise SystemExit("dagster dev did not come up")
        gql = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
        results: dict[str, list[dict[str, float]]] = {"asset": [], "job": []}
        for i, day in enumerate(days):
            kind = "asset" if i % 2 == 0 else "job"
            results[kind].append(_one_day(gql, kind, day))
            say(f"  {day} {kind:>5}: {results[kind][-1]}")
        report = _report(results, args)
        if args.json:
            print(json.dumps(report))
        else:
            for k, v in report.items():
                print(f"{k:>28}: {v}")
        client = MongoClient(env["MONGODB_URI"])
        archived = {r["day"] for r in client["dezky"]["archivebatches"].find({}, {"day": 1})}
        return 0 if archived >= set(days) else 1
    finally:
        if dagster is not None:
            stop_group(dagster)
        stack.stop()


def _one_day(gql: DagsterGraphQLClient, kind: str, day: str) -> dict[str, float]:
    launched = time.time()
    if kind == "asset":  # the asset page's Materialize for one partition
        run_id = gql.submit_job_execution(
            "__ASSET_JOB", asset_selection=[["cold_archive"]], tags={"dagster/partition": day}
        )
    else:  # the job's Launchpad with the day picked
        run_id = gql.submit_job_execution(
            JOB, tags={"dagster/partition": day, "dagster/partition_set": f"{JOB}_partition_set"}
        )
    while True:
        run = gql._execute(RUN, {"id": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.2)
    if run["status"] != "SUCCESS":
        raise SystemExit(f"{kind} run of {day} ended {run['status']}: {run_id}")
    messages = [
        e.get("message") or "" for e in gql._execute(LOGS, {"id": run_id})["logsForRun"]["events"]
    ]
    in_process = any(m.startswith("Executing steps in process") for m in messages)
    step_processes = sum(m.startswith("Started process for step") for m in messages)
    return {
        "per_day_seconds": round(run["endTime"] - launched, 2),
        "run_seconds": round(run["endTime"] - run["startTime"], 2),
        "step_processes": 1 if in_process else step_processes,
    }


def _report(results: dict[str, list[dict[str, float]]], args) -> dict[str, Any]:
    out: dict[str, Any] = {"days_each": args.days, "events_per_day": args.events_per_day}
    for kind, runs in results.items():
        for metric in ("per_day_seconds", "run_seconds", "step_processes"):
            out[f"{kind}_{metric}_median"] = statistics.median(r[metric] for r in runs)
    for metric in ("per_day_seconds", "run_seconds"):
        job = out[f"job_{metric}_median"]
        out[f"ratio_asset_to_job_{metric}"] = (
            round(out[f"asset_{metric}_median"] / job, 3) if job else None
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())

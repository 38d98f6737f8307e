"""Benchmark: catching up missed days through the Dagster daemon, seconds per day.

    python benchmarks/bench_catchup.py --days 30 [--events-per-day 50] [--json]

What a year of missed days costs (issue #15): the embedded SecantusDB and moto servers,
N small due days seeded, then ``dagster dev`` (webserver and daemon, the repo's
``dagster.yaml``: queued runs, at most 4 at once, one per day) and one backfill of the N
partitions of ``audit_archive_job`` launched through GraphQL, as the UI's "Launch
backfill" does. Measured from the backfill's submission until every run has finished:

- ``seconds_per_day``: wall time / N (the figure a backlog is planned with);
- ``run_seconds_median``: a run's own start-to-end time (the run worker: Python, Dagster
  and the definitions imported, resources checked, the six ops, the event log);
- ``queue_to_start_median``: from a run's creation until its worker started it;
- the split of one run's time, from its event log: process start to RUN_START, resource
  initialisation, the ops.

Every run must succeed and every day must have its batch record, or the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

LOCATION = "audit_archive"
JOB = "audit_archive_job"
RUNS = """query($t: [ExecutionTag!]) { runsOrError(filter: {tags: $t}) { ... on Runs {
  results { runId status creationTime startTime endTime tags { key value } } } } }"""
LOGS = """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  __typename ... on MessageEvent { timestamp } } } } }"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--max-concurrent-runs",
        type=int,
        help="the run queue's limit instead of dagster.yaml's (4): a variant measured",
    )
    parser.add_argument(
        "--default-launcher",
        action="store_true",
        help="Dagster's DefaultRunLauncher instead of dagster.yaml's (a new interpreter per "
        "run worker): the variant to compare with",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.json else print

    work = Path(tempfile.mkdtemp(prefix="bench-catchup-"))
    stack = start_stack(log_dir=work)
    dagster = None
    try:
        due, env = seed_due_days(stack, work, args.days, args.events_per_day)
        first, newest = due[0], due[-1]
        client = MongoClient(env["MONGODB_URI"], tz_aware=True)
        say(
            f"seeded {args.events_per_day * args.days:,} events on {args.days} due days ({first}..{newest})"
        )

        port = free_port()
        instance_yaml, limit = _instance_yaml(args.max_concurrent_runs, args.default_launcher)
        dagster = start_dagster(work / "home", port, env, instance_yaml, stdout=sys.stderr)
        if not wait_until_serving(port, dagster):
            raise SystemExit("dagster dev did not come up")
        gql = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
        keys = [layout.format_day(d) for d in layout.days(first, newest)]
        servers = [stack.mongo.process.pid, stack.s3.process.pid]
        cpu_before = _tree_cpu(dagster.pid), sum(_tree_cpu(p) for p in servers)
        load_before = os.getloadavg()[0]
        submitted = time.time()
        result = gql._execute(
            """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p)
               { __typename ... on LaunchBackfillSuccess { backfillId }
                 ... on PythonError { message } } }""",
            {
                "p": {
                    "selector": {
                        "partitionSetName": f"{JOB}_partition_set",
                        "repositorySelector": {
                            "repositoryLocationName": LOCATION,
                            "repositoryName": "__repository__",
                        },
                    },
                    "partitionNames": keys,
                }
            },
        )["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise SystemExit(f"backfill refused: {result}")
        tag = [{"key": "dagster/backfill", "value": result["backfillId"]}]
        deadline = time.monotonic() + args.timeout
        while True:
            runs = gql._execute(RUNS, {"t": tag})["runsOrError"]["results"]
            finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            if len(finished) == args.days:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(finished)} of {args.days} runs done in {args.timeout}s")
            time.sleep(1)
        wall = max(r["endTime"] for r in runs) - submitted
        cpu_dagster = _tree_cpu(dagster.pid) - cpu_before[0]
        cpu_servers = sum(_tree_cpu(p) for p in servers) - cpu_before[1]
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        archived = {r["day"] for r in client["dezky"]["archivebatches"].find({}, {"day": 1})}
        run_seconds = [r["endTime"] - r["startTime"] for r in runs]
        queued = [r["startTime"] - r["creationTime"] for r in runs]
        split = _split(gql, sorted(runs, key=lambda r: r["startTime"])[len(runs) // 2])
        report: dict[str, Any] = {
            "days": args.days,
            "events_per_day": args.events_per_day,
            "wall_seconds": round(wall, 1),
            "seconds_per_day": round(wall / args.days, 2),
            "run_seconds_median": round(statistics.median(run_seconds), 2),
            "queue_to_start_median": round(statistics.median(queued), 2),
            # How long the backfill took to create its runs (the daemon creates them; the
            # queue can start no run before it exists), and how many ran at once on average.
            "last_run_created_s": round(max(r["creationTime"] for r in runs) - submitted, 1),
            "runs_at_once_mean": round(sum(run_seconds) / wall, 2),
            # Per day once the runs flow: from the first run's start to the last one's end.
            # The daemon picks a new backfill up on its next pass (every 30 s, Dagster's
            # fixed interval), a latency per backfill that this leaves out.
            "seconds_per_day_running": round(
                (max(r["endTime"] for r in runs) - min(r["startTime"] for r in runs)) / args.days,
                2,
            ),
            "max_concurrent_runs": limit,
            "run_launcher": "DefaultRunLauncher" if args.default_launcher else "dagster.yaml's",
            # CPU per day, whatever else the machine runs: Dagster (daemon, webserver,
            # code server, run workers) and the two servers; the machine's load before.
            "dagster_cpu_s_per_day": round(cpu_dagster / args.days, 2),
            "servers_cpu_s_per_day": round(cpu_servers / args.days, 2),
            "load_average_before": round(load_before, 1),
            "one_run": split,
            "failed_runs": failed,
            "days_archived": len(archived & set(keys)),
            "cpus": os.cpu_count(),
        }
        if args.json:
            print(json.dumps(report))
        else:
            for k, v in report.items():
                print(f"{k:>24}: {v}")
        return 1 if failed or len(archived & set(keys)) != args.days else 0
    finally:
        if dagster is not None:
            stop_group(dagster)
        stack.stop()


def _instance_yaml(max_concurrent_runs: int | None, default_launcher: bool) -> tuple[str, int]:
    """The repo's dagster.yaml, with the run queue's limit replaced when one is given
    and without its run launcher when asked; and the limit in force."""
    text = (ROOT / "dagster.yaml").read_text()
    if default_launcher:
        text, found = re.subn(r"(?m)^run_launcher:\n(?:  .*\n)+", "", text)
        if not found:
            raise SystemExit("dagster.yaml has no run_launcher to leave out")
    current = int(re.search(r"max_concurrent_runs: (\d+)", text).group(1))
    if max_concurrent_runs is None:
        return text, current
    text = text.replace(
        f"max_concurrent_runs: {current}", f"max_concurrent_runs: {max_concurrent_runs}"
    )
    return text, max_concurrent_runs


def _tree_cpu(pid: int) -> float:
    """CPU seconds used by a process and all its descendants, live or reaped (a reaped
    child's time is in its parent's cutime/cstime; a live one's is its own)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        fields = stats.get(current)
        if fields:
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        todo.extend(children.get(current, ()))
    return total / os.sysconf("SC_CLK_TCK")


def _split(gql: DagsterGraphQLClient, run: dict[str, Any]) -> dict[str, float]:
    """One run's time by phase, from its event log (seconds)."""
    events = gql._execute(LOGS, {"id": run["runId"]})["logsForRun"]["events"]
    at = {}
    for e in events:
        at.setdefault(e["__typename"], float(e["timestamp"]) / 1000)
    first_step = min(
        (
            float(e["timestamp"]) / 1000
            for e in events
            if e["__typename"] == "ExecutionStepStartEvent"
        ),
        default=run["endTime"],
    )
    start = at.get("RunStartEvent", run["startTime"])
    resources_done = at.get("ResourceInitSuccessEvent", start)
    return {
        "worker_start_to_run_start": round(start - run["startTime"], 2),
        "resources": round(
            at.get("ResourceInitSuccessEvent", start) - at.get("ResourceInitStartedEvent", start), 2
        ),
        "until_first_op": round(first_step - start, 2),
        "ops": round(run["endTime"] - max(first_step, resources_done), 2),
        "total": round(run["endTime"] - run["startTime"], 2),
    }


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: what one run worker costs, the archive's day against Dagster's own floor.

    python benchmarks/bench_run_worker.py [--runs 5] [--events-per-day 50] [--json]
        [--profile DIR] [--importtime DIR]

Each run is started in a new process, as Dagster's launchers start a run worker, with
Dagster's public CLI: ``dagster job execute`` loads the code location, creates the run
and runs it in that process (a launched worker gets its run's record from the launcher,
and ``dagster api execute_run`` is otherwise the same start: interpreter, Dagster, the
code location, the instance). One run at a time, so the figures are the worker's own,
not the queue's:

- ``archive``: audit_archive_job on a small due day (the embedded servers, N days of
  ``--events-per-day`` seeded), loaded from ``audit_archive.definitions`` like the code
  location;
- ``six_steps`` and ``empty``: benchmarks/floor_location.py, six no-op steps with the
  archive's executor, and one op doing nothing: Dagster's own cost per run, the floor.

Per kind: ``cpu_s`` (the worker's user+sys, median), ``wall_s`` (median) and the
archive's run's events. ``--profile DIR`` writes one cProfile (CPU-timed) per kind,
``--importtime DIR`` one ``-X importtime`` log per kind. Every archive run must succeed
and archive its day, or the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit_archive.format import layout  # noqa: E402
from audit_archive.settings import DEFAULTS  # noqa: E402
from audit_archive_dev.due_days import seed_due_days  # noqa: E402
from audit_archive_dev.embedded import start_stack  # noqa: E402

FLOOR_FILE = Path(__file__).with_name("floor_location.py")
KINDS = ("archive", "six_steps", "empty")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _location_args(kind: str) -> list[str]:
    """The code location and job of ``kind``, as Dagster's CLI takes them."""
    if kind == "archive":
        return ["-m", "audit_archive.definitions", "-a", "defs", "-j", "audit_archive_job"]
    return ["-f", str(FLOOR_FILE), "-a", "defs", "-j", f"{kind}_job"]


# cProfile timed by CPU (process_time), around the same entry point as ``python -m dagster``.
_PROFILED = """
import cProfile, runpy, sys, time
sys.argv = ["dagster", *sys.argv[1:]]
p = cProfile.Profile(time.process_time)
try:
    p.runcall(runpy.run_module, "dagster", run_name="__main__")
except SystemExit:
    pass
finally:
    p.dump_stats({out!r})
"""


def _worker_command(kind: str, tags: dict[str, str], opts, index: int) -> list[str]:
    """One run worker's command: ``dagster job execute`` (Dagster's public CLI) creates
    the run and runs it in this new process, as a launched run worker does (plus the run's
    record, which a launcher writes before starting the worker)."""
    args = ["job", "execute", *_location_args(kind), "--tags", json.dumps(tags)]
    python = [sys.executable]
    if opts.importtime and index == 0:
        python += ["-X", "importtime"]
    if opts.profile and index == 0:
        out = Path(opts.profile) / f"{kind}.prof"
        return [*python, "-c", _PROFILED.format(out=str(out)), *args]
    return [*python, "-m", "dagster", *args]


def _run_once(instance, kind: str, day: str | None, opts, index: int) -> dict[str, Any]:
    from dagster import DagsterRunStatus, RunsFilter

    tags = {"bench/run": f"{kind}-{index}-{time.time_ns()}"}
    if day:
        tags["dagster/partition"] = day
    stderr = None
    if opts.importtime and index == 0:
        stderr = open(Path(opts.importtime) / f"{kind}.txt", "w")  # noqa: SIM115
    cpu0, started = _children_cpu(), time.perf_counter()
    try:
        subprocess.run(
            _worker_command(kind, tags, opts, index),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=stderr or subprocess.DEVNULL,
            cwd=str(ROOT),
        )
    finally:
        if stderr:
            stderr.close()
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu0
    runs = instance.get_runs(filters=RunsFilter(tags={"bench/run": tags["bench/run"]}))
    if not runs:
        return {"ok": False, "cpu_s": cpu, "wall_s": wall, "events": 0, "kinds": {}, "messages": []}
    run = runs[0]
    records = instance.get_records_for_run(run.run_id, limit=10_000).records
    kinds = Counter(r.event_log_entry.dagster_event_type or "LOG_MESSAGE" for r in records)
    messages = [
        r.event_log_entry.user_message[:100]
        for r in records
        if r.event_log_entry.dagster_event_type in (None, "ENGINE_EVENT")
    ]
    return {
        "ok": run.status == DagsterRunStatus.SUCCESS,
        "cpu_s": cpu,
        "wall_s": wall,
        "events": len(records),
        "kinds": dict(kinds),
        "messages": messages,
    }


def _days_archived(env: dict[str, str], days: list) -> int:
    """How many of ``days`` have their batch record (the run did archive the day)."""
    from pymongo import MongoClient

    client = MongoClient(env["MONGODB_URI"])
    try:
        batches = client.get_default_database()[DEFAULTS["AUDIT_BATCHES_COLLECTION"]]
        recorded = {r["day"] for r in batches.find({}, {"day": 1})}
    finally:
        client.close()
    return len(recorded & {layout.format_day(d) for d in days})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind")
    parser.add_argument("--events-per-day", type=int, default=50)
    parser.add_argument("--kinds", default=",".join(KINDS), help="which, comma-separated")
    parser.add_argument("--profile", help="write one cProfile per kind into DIR")
    parser.add_argument("--importtime", help="write one -X importtime log per kind into DIR")
    parser.add_argument(
        "--dagster-yaml", default=str(ROOT / "dagster.yaml"), help="the instance's settings"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    opts = parser.parse_args(argv)
    kinds = [k for k in opts.kinds.split(",") if k]
    for folder in (opts.profile, opts.importtime):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="bench-run-worker-"))
    stack = start_stack(log_dir=work)
    try:
        days, env = seed_due_days(stack, work, opts.runs, opts.events_per_day)
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(Path(opts.dagster_yaml).read_text())
        os.environ.update({**env, "DAGSTER_HOME": str(home)})
        from dagster import DagsterInstance

        instance = DagsterInstance.get()
        load = os.getloadavg()[0]
        report: dict[str, Any] = {"runs": opts.runs, "load_average_before": round(load, 1)}
        failed = False
        for kind in kinds:
            results = []
            for i in range(opts.runs):
                day = layout.format_day(days[i]) if kind == "archive" else None
                results.append(_run_once(instance, kind, day, opts, i))
            failed |= not all(r["ok"] for r in results)
            # The first run of each kind may be profiled: the figures are the others'.
            timed = (
                results[1:] if (opts.profile or opts.importtime) and len(results) > 1 else results
            )
            report[kind] = {
                "cpu_s": round(statistics.median(r["cpu_s"] for r in timed), 2),
                "wall_s": round(statistics.median(r["wall_s"] for r in timed), 2),
                "cpu_s_each": [round(r["cpu_s"], 2) for r in results],
                "run_events": results[-1]["events"],
                "run_event_kinds": results[-1]["kinds"],
                "run_log_messages": results[-1]["messages"],
                "succeeded": sum(r["ok"] for r in results),
            }
        if "archive" in kinds:
            report["days_archived"] = _days_archived(env, days[: opts.runs])
            failed |= report["days_archived"] != opts.runs
        report["load_average_after"] = round(os.getloadavg()[0], 1)
        report["cpus"] = os.cpu_count()
        if opts.json:
            print(json.dumps(report))
        else:
            for kind in kinds:
                r = report[kind]
                print(
                    f"{kind:>10}: cpu {r['cpu_s']:.2f} s, wall {r['wall_s']:.2f} s, "
                    f"{r['run_events']} events, {r['succeeded']}/{opts.runs} succeeded"
                )
            print(f"load average {report['load_average_before']} -> {report['load_average_after']}")
        return 1 if failed else 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())

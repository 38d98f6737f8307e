"""Where a profiled archive run's CPU went, by part of the run.

    python benchmarks/profile_breakdown.py DIR/archive.prof [--json]

Reads the cProfile stats ``bench_archive.py --profile DIR`` writes (timed by process CPU,
so waiting on the servers is not in them) and splits the run's CPU into:

- ``run_total``: ``execute_job``, everything the run did;
- Dagster's machinery: ``run_creation`` (the run record and the planned materialization),
  ``event_log`` (every event written to the run's log: serialization and storage),
  ``resource_init`` (our resources' setup: clients and start-up checks; includes
  ``clients``: the Mongo and S3 clients themselves);
- the ops' own work: ``op:<name>`` for each of the six ops (their Dagster wrapper is
  small), within which ``encode`` (archive.encode.encode), ``stage`` (the day's read)
  and ``purge`` (archive.purge.purge);
- ``dagster_other``: what is left (step orchestration, IO manager, type checks).

A profiled run's CPU is the profiler's too (about twice the unprofiled run's for
per-event Python code): read the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import pstats
from typing import Any

# (label, file suffix, function name): cumulative CPU of that function.
PARTS = (
    ("run_total", "dagster/_core/execution/api.py", "execute_job"),
    ("run_creation", "dagster/_core/instance/methods/run_methods.py", "create_run_for_job"),
    ("event_log", "dagster/_core/instance/methods/event_methods.py", "handle_new_event"),
    ("resource_init", "audit_archive/defs/resources.py", "setup_for_execution"),
    ("clients", "audit_archive/stores/clients.py", "s3_client"),
    ("clients", "audit_archive/stores/clients.py", "mongo_client"),
    ("op:extract_chained", "audit_archive/defs/ops.py", "extract_chained"),
    ("op:to_jsonl_gz", "audit_archive/defs/ops.py", "to_jsonl_gz"),
    ("op:sign_manifest", "audit_archive/defs/ops.py", "sign_manifest"),
    ("op:upload_and_confirm", "audit_archive/defs/ops.py", "upload_and_confirm"),
    ("op:record_batch", "audit_archive/defs/ops.py", "record_batch"),
    ("op:purge_hot", "audit_archive/defs/ops.py", "purge_hot"),
    ("encode", "audit_archive/archive/encode.py", "encode"),
    ("stage", "audit_archive/archive/extract.py", "_stage_events"),
    ("purge", "audit_archive/archive/purge.py", "purge"),
)


def breakdown(path: str) -> dict[str, Any]:
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    found: dict[str, float] = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.items():
        for label, suffix, function in PARTS:
            if name == function and filename.endswith(suffix):
                found[label] = found.get(label, 0.0) + cumulative
    total = found.get("run_total", 0.0)
    ops = sum(v for k, v in found.items() if k.startswith("op:"))
    dagster = ("run_creation", "event_log", "resource_init")
    found["dagster_other"] = max(0.0, total - ops - sum(found.get(k, 0.0) for k in dagster))
    return {
        "seconds": {k: round(v, 3) for k, v in found.items()},
        "share": {k: round(v / total, 3) for k, v in found.items()} if total else {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = {path: breakdown(path) for path in args.profiles}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for path, result in results.items():
        print(path)
        for key, seconds in result["seconds"].items():
            print(f"  {key:24} {seconds:>8.3f} s  {result['share'].get(key, 0):>6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

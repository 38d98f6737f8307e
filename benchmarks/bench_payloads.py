"""Benchmark: per-run and per-event cost of the archive against the naive pattern, by
payload shape.

    python benchmarks/bench_payloads.py [--payloads flat,plain,every] [--sizes 10000,100000]
                                        [--json] [--out FILE] [--python-path]

For each payload and each size, ``bench_archive.run`` seeds one due day and measures the
floor, the archive (the whole Dagster run: resources, event log, step hand-offs) and the
naive ``MongoToS3Operator`` pattern, each in its own process with its start-up (imports,
loading the definitions) measured apart. Between the two sizes it reports, for the
archive and the naive pattern:

- ``marginal_us``: CPU per further event, the slope ``(cpu(L) - cpu(S)) / (L - S)``;
- ``fixed_s``: CPU per run before the first event, ``cpu(S) - S * slope``;

and at the larger size the total work CPU ratio (archive / naive), the marginal ratio,
and archive wall / floor wall. ``flat`` is a few top-level keys, ``plain`` the seed's
nested JSON-born event (~480 B of BSON), ``every`` the flat keys plus one value of every
BSON type.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_archive


def slope(small: dict[str, Any], large: dict[str, Any], kind: str) -> tuple[float, float]:
    """(fixed CPU seconds per run, marginal CPU microseconds per event) of ``kind``."""
    n_small, n_large = small["events"], large["events"]
    per_event = (large[kind]["cpu_s"] - small[kind]["cpu_s"]) / (n_large - n_small)
    return round(small[kind]["cpu_s"] - n_small * per_event, 3), round(per_event * 1e6, 2)


def summarize(payload: str, small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    archive_fixed, archive_marginal = slope(small, large, "archive")
    naive_fixed, naive_marginal = slope(small, large, "naive")
    return {
        "payload": payload,
        "events": [small["events"], large["events"]],
        "bson_bytes_per_event": round(large["bytes_bson"] / large["events"]),
        "archive_cpu_s": [small["archive"]["cpu_s"], large["archive"]["cpu_s"]],
        "naive_cpu_s": [small["naive"]["cpu_s"], large["naive"]["cpu_s"]],
        "archive_fixed_s": archive_fixed,
        "naive_fixed_s": naive_fixed,
        "archive_marginal_us": archive_marginal,
        "naive_marginal_us": naive_marginal,
        "total_cpu_ratio": large["ratios"]["archive_cpu_vs_naive"],
        "marginal_cpu_ratio": round(archive_marginal / naive_marginal, 3),
        "archive_wall_vs_floor": large["ratios"]["archive_wall_vs_floor"],
        "archive_wall_s": large["archive"]["wall_s"],
        "floor_wall_s": large["floor"]["wall_s"],
        "archive_startup_cpu_s": large["archive"]["startup_cpu_s"],
        "archive_peak_rss_mib": [
            small["archive"]["peak_rss_mib"],
            large["archive"]["peak_rss_mib"],
        ],
        "archive_phases": large["archive"]["phases"],
        "load_average": [small["load_before"], large["load_before"]],
    }


def _print(rows: list[dict[str, Any]]) -> None:
    head = (
        "payload  B/ev  archive cpu S/L   naive cpu S/L   fixed a/n (s)   marginal a/n (us)"
        "  total  marg.  wall/floor"
    )
    print(head)
    for r in rows:
        print(
            f"{r['payload']:8} {r['bson_bytes_per_event']:>4}  "
            f"{r['archive_cpu_s'][0]:>6.2f}/{r['archive_cpu_s'][1]:<7.2f} "
            f"{r['naive_cpu_s'][0]:>6.2f}/{r['naive_cpu_s'][1]:<7.2f} "
            f"{r['archive_fixed_s']:>6.3f}/{r['naive_fixed_s']:<7.3f} "
            f"{r['archive_marginal_us']:>7.2f}/{r['naive_marginal_us']:<8.2f}  "
            f"{r['total_cpu_ratio']:.3f}  {r['marginal_cpu_ratio']:.3f}  "
            f"{r['archive_wall_vs_floor']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", default="flat,plain,every")
    parser.add_argument("--sizes", default="10000,100000", help="two sizes: S,L")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="also write the JSON (with every run's figures) here")
    parser.add_argument(
        "--python-path",
        action="store_true",
        help="the archive runs with the C encoder off (nativecodec.ENABLED = False)",
    )
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    if len(sizes) != 2 or not 0 < sizes[0] < sizes[1]:
        parser.error("--sizes takes two sizes S,L with 0 < S < L")
    payloads = args.payloads.split(",")
    if not set(payloads) <= set(bench_archive.PAYLOADS):
        parser.error(f"--payloads: a subset of {','.join(bench_archive.PAYLOADS)}")
    rows, runs = [], []
    for payload in payloads:
        measured = []
        for size in sizes:
            load = os.getloadavg()[0]
            result = bench_archive.run(
                size, args.seed, payload=payload, native=not args.python_path
            )
            result["load_before"] = round(load, 1)
            measured.append(result)
            runs.append(result)
            bench_archive._log(f"{payload} {size:,}: {json.dumps(result['ratios'])}")
        rows.append(summarize(payload, *measured))
    report = {"rows": rows, "runs": runs, "command": " ".join(["bench_payloads.py", *sys.argv[1:]])}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

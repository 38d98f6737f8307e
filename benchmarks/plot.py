"""Draw the benchmark figure of docs/performance.md from bench_archive.py --json results.

    python benchmarks/plot.py benchmarks/results/*.json -o benchmarks/results/benchmark.png

Left: peak memory (RSS) of the archive and the naive baseline against the day's size:
the archive stays flat, the naive pattern holds the whole day. Right: client CPU per
event of each. Runs made with --only simply lack the kinds they skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

KINDS = ("floor", "archive", "naive")
COLORS = {"floor": "#7f7f7f", "archive": "#1f77b4", "naive": "#d62728"}


def load(paths: list[Path]) -> list[dict]:
    results = [json.loads(p.read_text()) for p in paths]
    return sorted(results, key=lambda r: r["events"])


def plot(results: list[dict], out: Path) -> None:
    fig, (mem, cpu) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in ("archive", "naive"):
        points = [(r["events"], r[kind]["peak_rss_mib"]) for r in results if kind in r]
        if points:
            xs, ys = zip(*points, strict=True)
            mem.plot(xs, ys, marker="o", color=COLORS[kind], label=kind)
            for x, y in points:
                mem.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(0, 6))
    mem.set_xscale("log")
    mem.set_ylim(bottom=0)
    mem.set_xlabel("events in the day")
    mem.set_ylabel("peak RSS (MiB)")
    mem.set_title("Peak memory")
    mem.grid(True, which="both", alpha=0.3)
    mem.legend()

    sizes = [r["events"] for r in results]
    width = 0.8 / len(KINDS)
    for i, kind in enumerate(KINDS):
        xs = [j + (i - 1) * width for j, r in enumerate(results) if kind in r]
        ys = [r["cpu_us_per_event"][kind] for r in results if kind in r]
        bars = cpu.bar(xs, ys, width, color=COLORS[kind], label=kind)
        cpu.bar_label(bars, fmt="%.0f", fontsize=8)
    cpu.set_xticks(range(len(sizes)), [f"{n:,}" for n in sizes])
    cpu.set_xlabel("events in the day")
    cpu.set_ylabel("client CPU per event (µs)")
    cpu.set_title("Client CPU per event (user+sys)")
    cpu.grid(True, axis="y", alpha=0.3)
    cpu.legend()

    machine = results[-1].get("machine", {})
    fig.suptitle(
        f"audit-archive benchmark: {machine.get('cpus')} cores, "
        f"{machine.get('memory_gib')} GiB, Python {machine.get('python')}, "
        f"{machine.get('mongo', '')}, {machine.get('s3', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def _cell(result: dict, kind: str) -> str:
    if kind not in result:
        return "not run"
    r = result[kind]
    return f"{r['wall_s']:,.1f} s / {r['cpu_s']:,.2f} s / {r['peak_rss_mib']:,.0f} MiB"


def table(results: list[dict]) -> str:
    """The table of docs/performance.md: wall / CPU / peak RSS of each, and the ratios."""
    lines = [
        "| events | floor (wall / CPU / peak RSS) | archive | naive "
        "| archive wall vs floor | archive CPU vs naive | archive RSS vs naive |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        ratios = r["ratios"]
        lines.append(
            f"| {r['events']:,} | {_cell(r, 'floor')} | {_cell(r, 'archive')} "
            f"| {_cell(r, 'naive')} | {ratios['archive_wall_vs_floor'] or '-'} "
            f"| {ratios['archive_cpu_vs_naive'] or '-'} | {ratios['archive_rss_vs_naive'] or '-'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="bench_archive.py --json outputs")
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/benchmark.png"))
    parser.add_argument("--table", action="store_true", help="also print the Markdown table")
    args = parser.parse_args(argv)
    results = load(args.results)
    plot(results, args.out)
    print(table(results) if args.table else args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

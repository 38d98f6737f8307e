"""Benchmark: gzip levels for the archive's JSONL, CPU per event against the space.

    python benchmarks/bench_gzip.py [--events 20000] [--payloads flat,plain,every] [--json]

The archive's own lines (fastcodec, as encode writes them) for N generated events of each
payload (bench_archive's shapes), compressed in 1 MiB pieces, as the archive's writer
does, with zlib (the standard library; ``gzip.compress`` of the naive pattern is level 9)
at levels 1, 6 and 9 and with python-isal (ISA-L) at levels 0 to 3. For each: CPU
microseconds per event (process time, the best of three passes) and the object's size
against zlib level 6's. No servers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_archive  # noqa: E402

CODECS = [("zlib", 1), ("zlib", 6), ("zlib", 9), ("isal", 0), ("isal", 1), ("isal", 2), ("isal", 3)]
PIECE = 1 << 20


def _lines(payload: str, events: int) -> list[bytes]:
    """The archive's JSONL for the events, in the writer's 1 MiB pieces."""
    import bson

    from audit_archive.format import fastcodec
    from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.bson"
        bench_archive._generate(path, events, dt.date(2026, 1, 1), 1, payload)
        docs = bson.decode_all(path.read_bytes(), FAST_CODEC_OPTIONS)
    joined = fastcodec.encode_batch(docs).joined
    return [joined[i : i + PIECE] for i in range(0, len(joined), PIECE)]


def _compress(kind: str, level: int, pieces: list[bytes]) -> tuple[float, int]:
    """(best process-CPU seconds of three passes, compressed bytes)."""
    from isal import isal_zlib

    module = isal_zlib if kind == "isal" else zlib
    best, size = float("inf"), 0
    for _ in range(3):
        started = time.process_time()
        compressor = module.compressobj(level, module.DEFLATED, 31)
        size = sum(len(compressor.compress(p)) for p in pieces) + len(compressor.flush())
        best = min(best, time.process_time() - started)
    return best, size


def run(payloads: list[str], events: int) -> list[dict[str, Any]]:
    rows = []
    for payload in payloads:
        pieces = _lines(payload, events)
        raw = sum(map(len, pieces))
        measured = {(k, lv): _compress(k, lv, pieces) for k, lv in CODECS}
        reference = measured[("zlib", 6)][1]
        for (kind, level), (cpu, size) in measured.items():
            rows.append(
                {
                    "payload": payload,
                    "codec": kind,
                    "level": level,
                    "us_per_event": round(cpu / events * 1e6, 2),
                    "mb_per_cpu_s": round(raw / cpu / 1e6, 1),
                    "ratio": round(raw / size, 2),
                    "size_vs_zlib6": round(size / reference, 3),
                    "bytes_per_event": round(size / events, 1),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--payloads", default="flat,plain,every")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.payloads.split(","), args.events)
    if args.json:
        print(json.dumps({"events": args.events, "rows": rows}, indent=2))
        return 0
    print("payload codec level  us/event  MB/cpu-s  ratio  size vs zlib 6  B/event")
    for r in rows:
        print(
            f"{r['payload']:7} {r['codec']:5} {r['level']:>5} {r['us_per_event']:>9} "
            f"{r['mb_per_cpu_s']:>9} {r['ratio']:>6} {r['size_vs_zlib6']:>15} "
            f"{r['bytes_per_event']:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the archive's encode step on a very large day, without a database.

    python benchmarks/bench_stream.py --events 10000000 [--json]

What a 10M- or 100M-event day costs the archive's client, and whether its memory stays
flat, where seeding the embedded SecantusDB with that many events would take hours (it
reads about a thousand events a second on this machine). Honestly labelled: this is NOT
a whole run. A generator writes N chained flat events (bench_archive's ``flat`` shape,
each hashed as SPEC 1 says) into a staging file exactly as extract stages the server's
raw batches, then ``archive.encode.encode`` runs over it in this process: decoding,
both JSON views, the re-hash of every event, the chain checks, the Merkle tree, gzip
and the sha256 of the object. The read from Mongo, the upload and the purge are not in
it (their per-event client CPU is in bench_payloads' marginal cost).

It prints the encode step's CPU and wall time, CPU per event, and the process's
resident memory at every progress message (every 50,000 events) so that a flat profile
can be seen: ``rss_mib`` first, median and last, and the peak (VmHWM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def generate(path: Path, events: int, day: dt.date, seed: int = 1) -> tuple[int, int, int]:
    """N chained flat events of the day as staged raw BSON; (first seq, last seq, bytes).
    Hashed with fastcodec's canonical JSON (the tests prove it equals canonical.py's)."""
    import bson
    from bson import ObjectId
    from bson.datetime_ms import DatetimeMS

    from audit_archive.format.canonical import ZERO_HASH
    from audit_archive.format.fastcodec import encode_batch
    from audit_archive_dev.seed import ACTIONS, SOURCES

    rng = random.Random(seed)
    start_ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    step = 86_400_000 / events
    prev, seq, size = ZERO_HASH, 1, 0
    results = ("ok", "ok", "ok", "denied", "error")
    with open(path, "wb", buffering=1 << 22) as f:
        for i in range(events):
            if rng.random() < 0.03:
                seq += rng.randint(1, 5)  # burned numbers, as the seed has them
            doc: dict[str, Any] = {
                "_id": ObjectId(rng.randbytes(12)),
                "seq": seq,
                "at": DatetimeMS(start_ms + int(i * step)),
                "source": rng.choice(SOURCES),
                "action": rng.choice(ACTIONS),
                "actor": f"u{rng.randint(1, 500)}",
                "result": rng.choice(results),
                "prevHash": prev,
            }
            doc["hash"] = prev = encode_batch([doc]).rehashes[0]
            raw = bson.encode(doc)
            f.write(raw)
            size += len(raw)
            seq += 1
            if (i + 1) % 1_000_000 == 0:
                _progress(f"generated {i + 1:,} events")
    return 1, seq - 1, size


def _progress(message: str) -> None:
    """A line on stderr as the run goes (a 10M-event day takes long on a shared machine)."""
    print(
        f"{time.strftime('%H:%M:%S')} {message}: cpu {_cpu():.1f} s, rss {_rss_mib()} MiB",
        file=sys.stderr,
        flush=True,
    )


def measure(events: int, workdir: Path) -> dict[str, Any]:
    from audit_archive.archive.encode import encode
    from audit_archive.archive.results import Extracted, PartRef

    day = dt.date(2026, 1, 1)
    ref = PartRef(day, 1, "bench", "bench", str(workdir))
    started = time.perf_counter()
    first, last, size = generate(Path(ref.events_path), events, day)
    generate_s = time.perf_counter() - started
    Path(ref.neighbours_path).write_text("")
    extracted = Extracted(ref, events, first, last, None, None)
    rss: list[float] = []
    before_rss = _rss_mib()
    cpu0, wall0 = _cpu(), time.perf_counter()

    def log(message: str) -> None:
        rss.append(_rss_mib())
        if len(rss) % 20 == 0:  # every 1,000,000 events
            _progress(message)

    encoded = encode(extracted, "bench", 5000, log=log)
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    if encoded.summary.event_count != events:
        raise SystemExit(f"encoded {encoded.summary.event_count} of {events} events")
    return {
        "events": events,
        "payload": "flat (generated, streamed from a staging file; no database)",
        "bson_bytes": size,
        "jsonl_bytes": encoded.summary.jsonl_bytes_uncompressed,
        "gzip_bytes": encoded.summary.jsonl_bytes,
        "generate_wall_s": round(generate_s, 1),
        "encode_cpu_s": round(cpu, 2),
        "encode_wall_s": round(wall, 2),
        "encode_cpu_us_per_event": round(cpu / events * 1e6, 2),
        "rss_mib_before": before_rss,
        "rss_mib_first_median_last": [rss[0], statistics.median(rss), rss[-1]] if rss else [],
        "peak_rss_mib": _rss_mib("VmHWM"),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dir", help="staging directory (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        result = measure(args.events, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

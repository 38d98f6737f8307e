"""Benchmark: the encode step of two checkouts, back to back in one run (before / after).

    python benchmarks/bench_compare.py --base ../codec-base [--head .] [--events 20000]
        [--payloads flat,plain,every] [--rounds 3] [--out result.json]

No servers. For each payload, N events are generated once (bench_archive's shapes, staged
as extract stages them) and every measurement reads that same file. Each round runs one
child process per checkout, in alternating order (base first in even rounds, head first
in odd ones), with the checkout's own ``audit_archive`` first on ``sys.path``; the child
measures, as bench_parts does (process CPU, best of three, microseconds per event):

- ``encode_step``: ``archive.encode.encode`` over the staged file, all of it;
- ``naive_sum``: the naive pattern's decode, ``json_util.dumps`` and ``gzip.compress``,
  the same code in both children: how much the machine gave that child.

It prints, per payload, the medians of the rounds, ``after / before`` of encode_step and
each side's ``encode_step / naive_sum``; it fails unless both checkouts wrote the same
object (sha256 of the gzip file), the same seq runs and the same Merkle root: the
archived bytes must not change.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_archive

DAY = dt.date(2026, 1, 1)
_HERE = str(Path(__file__).resolve().parent)

# Runs in the child: argv = checkout, staged file, events, workdir, this benchmarks folder.
_CHILD = r"""
import datetime as dt, gzip, hashlib, json, os, sys
checkout, staged, events, workdir, benchmarks = sys.argv[1:3] + [int(sys.argv[3])] + sys.argv[4:6]
sys.path.insert(0, checkout)
import bson
from bson import json_util
import audit_archive
from audit_archive.archive.encode import encode
from audit_archive.archive.results import Extracted
from audit_archive.format import bsonpeek

assert audit_archive.__file__.startswith(checkout), audit_archive.__file__


sys.path.append(benchmarks)  # after the checkout's own: bench_parts' timer only
from bench_parts import _best


def best(fn, collect=False):
    return _best(fn, events, collect)


data = open(staged, "rb").read()
seqs = [s for s in bsonpeek.int_seqs(data) if s is not None]
day = dt.date(2026, 1, 1)
try:  # since issue 22's PartRef: the staging files' paths follow from the workdir
    from audit_archive.archive.results import PartRef
except ImportError:  # before it: the paths in Extracted
    PartRef = None
if PartRef is None:
    neighbours = workdir + "/neighbors.jsonl"
    open(neighbours, "w").close()
    x = Extracted(day, 1, "bench", workdir, staged, neighbours, events, seqs[0], seqs[-1], None, None)
    outputs = lambda e: (e.jsonl_path, e.runs_path)
else:
    ref = PartRef(day, 1, "bench", "bench", workdir)
    os.symlink(staged, ref.events_path)
    open(ref.neighbours_path, "w").close()
    x = Extracted(ref, events, seqs[0], seqs[-1], None, None)
    outputs = lambda e: (e.ref.jsonl_path, e.ref.runs_path)
result = {}
encoded = []
result["encode_step"] = best(lambda: encoded.append(encode(x, "bench", 5000)))
docs = bson.decode_all(data)
text = json_util.dumps(docs).encode()
result["naive_sum"] = (
    best(lambda: bson.decode_all(data), collect=True)
    + best(lambda: json_util.dumps(docs), collect=True)
    + best(lambda: gzip.compress(text), collect=True)
)
last = encoded[-1]
jsonl_path, runs_path = outputs(last)
result["object_sha256"] = hashlib.sha256(open(jsonl_path, "rb").read()).hexdigest()
result["runs_sha256"] = hashlib.sha256(open(runs_path, "rb").read()).hexdigest()
result["merkle_root"] = last.summary.merkle_root
loaded = [m.__file__ for n, m in sys.modules.items() if n.startswith("audit_archive") and m.__file__]
assert all(f.startswith(checkout) for f in loaded), "every audit_archive module from the checkout"
print(json.dumps(result))
"""


def _child(python: str, checkout: Path, staged: Path, events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        out = subprocess.run(
            [python, "-c", _CHILD, str(checkout), str(staged), str(events), workdir, _HERE],
            check=True,
            capture_output=True,
            text=True,
            cwd=workdir,
        )
    return json.loads(out.stdout.splitlines()[-1])


def compare(
    base: Path, head: Path, payload: str, events: int, rounds: int, directory: Path
) -> dict[str, Any]:
    staged = directory / f"{payload}.events.bson"
    size = bench_archive._generate(staged, events, DAY, 1, payload)
    sides: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for r in range(rounds):
        order = [("before", base), ("after", head)]
        for name, checkout in order if r % 2 == 0 else order[::-1]:
            sides[name].append(_child(sys.executable, checkout, staged, events))
            print(f"{payload} round {r + 1} {name}: {sides[name][-1]}", file=sys.stderr)
    same = {
        key: len({m[key] for side in sides.values() for m in side}) == 1
        for key in ("object_sha256", "runs_sha256", "merkle_root")
    }
    med = {
        name: {
            k: round(statistics.median(m[k] for m in runs), 2) for k in ("encode_step", "naive_sum")
        }
        for name, runs in sides.items()
    }
    return {
        "payload": payload,
        "bson_bytes_per_event": round(size / events),
        "before": med["before"],
        "after": med["after"],
        "encode_step_after_vs_before": round(
            med["after"]["encode_step"] / med["before"]["encode_step"], 3
        ),
        "before_encode_vs_naive": round(
            med["before"]["encode_step"] / med["before"]["naive_sum"], 3
        ),
        "after_encode_vs_naive": round(med["after"]["encode_step"] / med["after"]["naive_sum"], 3),
        "same_archived_bytes": same,
        "rounds": {name: runs for name, runs in sides.items()},
    }


def _commit(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, type=Path)
    parser.add_argument("--head", default=Path(__file__).resolve().parent.parent, type=Path)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--payloads", default="flat,plain,every")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    base, head = args.base.resolve(), args.head.resolve()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            compare(base, head, p, args.events, args.rounds, Path(tmp))
            for p in args.payloads.split(",")
        ]
    result = {
        "events": args.events,
        "rounds": args.rounds,
        "base": f"{base} ({_commit(base)})",
        "head": f"{head} ({_commit(head)})",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "payloads": rows,
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        "payload  encode before  after  after/before  naive before  after  enc/naive before  after  same bytes"
    )
    for r in rows:
        print(
            f"{r['payload']:8} {r['before']['encode_step']:>13} {r['after']['encode_step']:>6} "
            f"{r['encode_step_after_vs_before']:>13} {r['before']['naive_sum']:>13} "
            f"{r['after']['naive_sum']:>6} {r['before_encode_vs_naive']:>17} "
            f"{r['after_encode_vs_naive']:>6}  {all(r['same_archived_bytes'].values())}"
        )
    print(
        f"load average before {result['load_average_before']}, after {result['load_average_after']}"
    )
    return 0 if all(all(r["same_archived_bytes"].values()) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

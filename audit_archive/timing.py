"""Seconds spent per phase of archive runs, for the benchmark and for profiling.

Always on, because it costs nothing measurable: steps time whole steps, or batches of a
few thousand events, never single values. Totals are process-wide (like a metrics
registry) and only meaningful in the process that ran the job; the benchmark
(``benchmarks/bench_archive.py``) runs one job per process and reads them afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# read_decode: the extract step (query to staging file) plus reading the staged file and
# BSON decoding in encode (none for a batch the C encoder, nativecodec, takes);
# hash: the Merkle leaves; encode: Relaxed Extended JSON lines and the event re-hashes
# (the C encoder, or the Python path after decoding);
# compress: gzip, the running sha256 of its output and the file write;
# chain: chain-link checks and chainEdges; the others are whole steps or their calls.
PHASES = (
    "read_decode",
    "hash",
    "encode",
    "compress",
    "chain",
    "sign",
    "upload",
    "confirm",
    "record",
    "purge",
)

clock = time.perf_counter
_totals: dict[str, float] = dict.fromkeys(PHASES, 0.0)


def add(phase: str, seconds: float) -> None:
    _totals[phase] = _totals.get(phase, 0.0) + seconds


@contextmanager
def timed(phase: str) -> Iterator[None]:
    start = clock()
    try:
        yield
    finally:
        add(phase, clock() - start)


def snapshot() -> dict[str, float]:
    """Totals so far, in seconds."""
    return dict(_totals)


def reset() -> None:
    for phase in list(_totals):
        _totals[phase] = 0.0

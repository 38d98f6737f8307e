"""Benchmark: where an event's CPU goes, part by part, and gzip levels against space.

    python benchmarks/bench_parts.py [--events 20000] [--payloads flat,plain,every] [--json]

No servers. For N generated events of each payload (bench_archive's shapes), staged as
extract stages them:

``parts``: CPU microseconds per event (process time, best of three) of each piece of
work the archive must do per event, and of the naive pattern's pieces:

- ``decode``: ``bson.decode_all`` with FAST_CODEC_OPTIONS, cyclic collector paused (as
  encode runs it); ``views_and_json``: ``fastcodec.encode_batch`` (both views of each
  event, both orjson writes, the read-back count, and since issue 24's second round the
  sha256 of each canonical JSON, hashed as it is written); ``orjson_only``: the two orjson writes
  alone on views built beforehand (what is left if the Python around them cost nothing);
  ``sha256``: the re-hash of every event; ``merkle``: leaf and node hashes
  (MerkleBuilder, Python path); ``merkle_native``: the same in C (nativecodec
  .merkle_extend: SHA-NI where the CPU has it), ``merkle_native_portable`` and
  ``merkle_native_hashlib``: the C loop with its portable SHA-256, or calling hashlib's
  sha256 (the alternatives it was measured against); ``int_seqs``: extract's read of every
  staged event's seq (bsonpeek), ``int_seqs_native``: the same in C;
  ``gzip``: ISA-L level 2 over the lines; ``read_back``: the lines encode_batch could not
  prove readable, parsed and compared (SPEC 3); ``encode_step``: ``archive.encode.encode``
  over the staged file, all of it (chain checks, runs for the purge, the file writes),
  on the Python path (nativecodec.ENABLED False); ``encode_step_native``: the same with
  the C encoder on (issue 24; ``native_taken``: whether it took the payload's events,
  ``native_chunk``: its call alone over the whole file, ``native_chunk_hashlib`` the
  same with each event re-hashed by a call to hashlib's sha256 instead of in C);
- naive: ``naive_decode`` (pymongo's default options, collector on), ``naive_dumps``
  (``json_util.dumps`` of the list), ``naive_gzip`` (``gzip.compress``, level 9).

``gzip``: the archive's own lines (fastcodec, as encode writes them) for N generated events of each
payload (bench_archive's shapes), compressed in 1 MiB pieces, as the archive's writer
does, with zlib (the standard library; ``gzip.compress`` of the naive pattern is level 9)
at levels 1, 6 and 9 and with python-isal (ISA-L) at levels 0 to 3. For each: CPU
microseconds per event (process time, the best of three passes) and the object's size
against zlib level 6's. No servers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_archive

CODECS = [("zlib", 1), ("zlib", 6), ("zlib", 9), ("isal", 0), ("isal", 1), ("isal", 2), ("isal", 3)]
PIECE = 1 << 20


def _best(fn: Callable[[], Any], events: int, collect: bool = False) -> float:
    """Best process-CPU microseconds per event of three calls (collector paused unless
    ``collect``, as the archive's encode loop runs)."""
    best = float("inf")
    for _ in range(3):
        gc.collect()
        if not collect:
            gc.disable()
        try:
            started = time.process_time()
            fn()
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
    return round(best / events * 1e6, 2)


def _off(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with the C module off (nativecodec.ENABLED False: the Python paths)."""
    from audit_archive.format import nativecodec

    def run() -> Any:
        nativecodec.ENABLED = False
        try:
            return fn()
        finally:
            nativecodec.ENABLED = True

    return run


def _staged(payload: str, events: int, directory: Path) -> Path:
    path = directory / "part-0001.events.bson"
    bench_archive._generate(path, events, dt.date(2026, 1, 1), 1, payload)
    return path


def _encode_step(staged: Path, events: int, native: bool = False) -> Callable[[], Any]:
    """The encode step over the staged file, the C encoder (nativecodec) on or off."""
    from audit_archive.archive.encode import encode
    from audit_archive.archive.results import Extracted, PartRef
    from audit_archive.format import bsonpeek, nativecodec

    seqs = [s for s in bsonpeek.int_seqs(staged.read_bytes()) if s is not None]
    ref = PartRef(dt.date(2026, 1, 1), 1, "bench", "bench", str(staged.parent))
    if Path(ref.events_path) != staged:
        raise SystemExit(f"the staged events must be at {ref.events_path}")
    Path(ref.neighbours_path).write_text("")
    extracted = Extracted(ref, events, seqs[0], seqs[-1], None, None)

    def run() -> None:
        nativecodec.ENABLED = native
        try:
            encode(extracted, "bench", 5000)
        finally:
            nativecodec.ENABLED = True

    return run


def parts(payload: str, events: int) -> dict[str, Any]:
    """CPU microseconds per event of each piece (module docstring)."""
    import gzip

    import bson
    import orjson
    from bson import json_util
    from isal import isal_zlib

    from audit_archive.archive.staged import raw_of
    from audit_archive.format import bsonpeek, fastcodec, nativecodec
    from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS
    from audit_archive.format.merkle import MerkleBuilder

    with tempfile.TemporaryDirectory() as tmp:
        staged = _staged(payload, events, Path(tmp))
        data = staged.read_bytes()
        docs = bson.decode_all(data, FAST_CODEC_OPTIONS)
        batch = fastcodec.encode_batch(docs)
        views = [view[:2] for view in fastcodec._views(docs)]
        hooks = fastcodec._LineHooks()
        canonicals = [
            orjson.dumps(body, default=fastcodec._canonical_default, option=fastcodec._CANONICAL)
            for _, body in views
        ]

        def orjson_only() -> None:
            for view, body in views:
                orjson.dumps(view, default=hooks.relaxed, option=fastcodec._RELAXED)
                orjson.dumps(
                    body, default=fastcodec._canonical_default, option=fastcodec._CANONICAL
                )

        def gzip_lines() -> None:
            compressor = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
            for i in range(0, len(batch.joined), PIECE):
                compressor.compress(batch.joined[i : i + PIECE])
            compressor.flush()

        hashes = [d["hash"] for d in docs]
        naive_docs = bson.decode_all(data)
        naive_text = json_util.dumps(naive_docs).encode()
        result = {
            "payload": payload,
            "bson_bytes_per_event": round(len(data) / events),
            "decode": _best(lambda: bson.decode_all(data, FAST_CODEC_OPTIONS), events),
            "views_and_json": _best(lambda: fastcodec.encode_batch(docs), events),
            "orjson_only": _best(orjson_only, events),
            "sha256": _best(lambda: [hashlib.sha256(c).hexdigest() for c in canonicals], events),
            "merkle": _best(_off(lambda: MerkleBuilder().add_all(hashes)), events),
            "merkle_native": _best(lambda: MerkleBuilder().add_all(hashes), events),
            "merkle_native_portable": _best(
                lambda: nativecodec.merkle_extend([], 0, hashes, nativecodec.PORTABLE), events
            ),
            "merkle_native_hashlib": _best(
                lambda: nativecodec.merkle_extend([], 0, hashes, nativecodec.HASHLIB), events
            ),
            "int_seqs": _best(lambda: bsonpeek.int_seqs(data), events),
            "int_seqs_native": _best(lambda: nativecodec.int_seqs(data), events),
            "gzip": _best(gzip_lines, events),
            "read_back_lines": len(batch.unproven),
            "read_back": _best(
                lambda: fastcodec.make_readable(
                    batch.joined, batch.unproven, batch.rehashes, raw_of(data, None)
                ),
                events,
            ),
            "encode_step": _best(_encode_step(staged, events), events),
            "native_chunk": _best(lambda: nativecodec.encode_chunk(data), events),
            "native_chunk_hashlib": _best(
                lambda: nativecodec.encode_chunk(data, nativecodec.HASHLIB), events
            ),
            "native_taken": nativecodec.encode_chunk(data) is not None,
            "encode_step_native": _best(_encode_step(staged, events, True), events),
            "naive_decode": _best(lambda: bson.decode_all(data), events, collect=True),
            "naive_dumps": _best(lambda: json_util.dumps(naive_docs), events, collect=True),
            "naive_gzip": _best(lambda: gzip.compress(naive_text), events, collect=True),
        }
    result["archive_least"] = round(
        sum(result[k] for k in ("decode", "orjson_only", "sha256", "merkle", "gzip")), 2
    )
    result["naive_sum"] = round(
        sum(result[k] for k in ("naive_decode", "naive_dumps", "naive_gzip")), 2
    )
    for key in ("encode_step", "encode_step_native", "archive_least"):
        result[f"{key}/naive_sum"] = round(result[key] / result["naive_sum"], 3)
    return result


def _lines(payload: str, events: int) -> list[bytes]:
    """The archive's JSONL for the events, in the writer's 1 MiB pieces."""
    import bson

    from audit_archive.format import fastcodec
    from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS

    with tempfile.TemporaryDirectory() as tmp:
        docs = bson.decode_all(_staged(payload, events, Path(tmp)).read_bytes(), FAST_CODEC_OPTIONS)
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


def gzip_levels(payloads: list[str], events: int) -> list[dict[str, Any]]:
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


PARTS = (
    "decode", "views_and_json", "orjson_only", "sha256", "merkle", "merkle_native",
    "merkle_native_portable", "merkle_native_hashlib", "int_seqs", "int_seqs_native", "gzip", "read_back",
    "encode_step", "native_chunk", "native_chunk_hashlib", "native_taken", "encode_step_native", "archive_least",
    "naive_decode", "naive_dumps", "naive_gzip", "naive_sum", "encode_step/naive_sum",
    "encode_step_native/naive_sum", "archive_least/naive_sum",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--payloads", default="flat,plain,every")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    payloads = args.payloads.split(",")
    part_rows = [parts(p, args.events) for p in payloads]
    rows = gzip_levels(payloads, args.events)
    if args.json:
        print(json.dumps({"events": args.events, "parts": part_rows, "gzip": rows}, indent=2))
        return 0
    print("us/event                     " + "".join(f"{p:>10}" for p in payloads))
    for key in ("bson_bytes_per_event", *PARTS):
        print(f"{key:28} " + "".join(f"{r[key]:>10}" for r in part_rows))
    print()
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

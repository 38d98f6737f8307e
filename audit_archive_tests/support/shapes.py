"""Chains shaped the way users' chains are: days whose seqs interleave (late events),
a day whose late events come after many of the next day's, and seqs stored as Int32,
Int64 or both. Each returns the documents to insert (seeded with audit_archive_dev.seed,
so they hash and chain like the producer's)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any

from bson.int64 import Int64

from audit_archive.format.canonical import ZERO_HASH
from audit_archive_dev import seed

WIDTHS = ("int32", "int64", "mixed", "crossing")
CROSSING_FIRST_SEQ = 2**31 - 40  # "crossing": Int32 below 2^31, Int64 from there on


def interleaved_ats(
    days: Iterable[dt.date], blocks: int, per_block: int, rng: random.Random
) -> list[dt.datetime]:
    """``at`` values in chain order for days whose seqs interleave: ``blocks`` rounds,
    each giving every day ``per_block`` consecutive seqs, so the chain goes day A, day B,
    ..., day A, day B, ... (events ingested late from other systems)."""
    days = list(days)
    times = {day: iter(seed.day_times(day, blocks * per_block, rng)) for day in days}
    return [next(times[day]) for _ in range(blocks) for day in days for _ in range(per_block)]


def spanning_ats(
    day: dt.date, own: int, foreign: int, rng: random.Random, split: float = 0.5
) -> list[dt.datetime]:
    """``at`` values for a day of ``own`` events whose last ``own - own*split`` were
    chained after ``foreign`` events of the next day (issue 15's shape)."""
    first = round(own * split)
    mine = seed.day_times(day, own, rng)
    others = seed.day_times(day + dt.timedelta(days=1), foreign, rng)
    return [*mine[:first], *others, *mine[first:]]


def chain(
    ats: Iterable[dt.datetime],
    rng: random.Random,
    *,
    width: str = "int32",
    gap_rate: float = 0.05,
    after: tuple[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Chained events for ``ats`` with their seqs stored as ``width`` (WIDTHS): "int64"
    every seq a NumberLong, "mixed" Int32 and Int64 at random, "crossing" plain ints from
    just below 2^31 (the driver stores Int32 below it and Int64 above). The hash scheme
    treats both widths alike, so the chain is the same whatever the width."""
    if width not in WIDTHS:
        raise ValueError(f"width must be one of {WIDTHS}")
    first_seq, prev_hash = after or (
        CROSSING_FIRST_SEQ if width == "crossing" else 1,
        ZERO_HASH,
    )
    docs = list(
        seed.chain(ats, first_seq=first_seq, prev_hash=prev_hash, rng=rng, gap_rate=gap_rate)
    )
    for doc in docs:
        if width == "int64" or (width == "mixed" and rng.random() < 0.5):
            doc["seq"] = Int64(doc["seq"])
    return docs

"""A backfill of days whose seqs interleave (late events), archived at once (issue 17).

Day A's chain neighbours are day B's events, and B's run moves them from hot to the
archive (it records its part, then purges the events) while A's run looks for them.
A's chain check must find each neighbour in one place or the other, whatever the
timing: never a false chain break, never "no chained event precedes it".

Two ways to get the timing: B's run put between every two of A's MongoDB commands in
turn (deterministic: it covers every place B's record and purge can fall), and days
archived at once on threads, many times, with jittered latency (the slow variant runs
more of them). The runs call the six steps in order as the job's ops do, without the
Dagster machinery, so a test can afford a hundred of them.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

from audit_archive.archive import steps
from audit_archive.format import layout
from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores, hot_database, open_stores
from audit_archive_tests.support import shapes
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import run_at_once


class Listener(monitoring.CommandListener):
    """Calls ``before`` with each command, in the issuing thread, before it goes out."""

    def __init__(self, before: Callable[[monitoring.CommandStartedEvent], None]) -> None:
        self.before = before

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.before(event)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


def _stores(settings: Settings, listener: Listener | None) -> Stores:
    stores = open_stores(settings, check=False)
    if listener is not None:  # the same hot store, on a client that reports its commands
        stores.hot.client.close()
        client = MongoClient(settings.mongodb_uri, event_listeners=[listener])
        stores.hot = hot_database(settings, client)
    return stores


def run_steps(settings: Settings, day: dt.date, listener: Listener | None = None) -> Iterator[str]:
    """One day's run, step by step: yields "extracted" and "recorded" (the caller may do
    something there) and ends after the purge. Raises what the run raises."""
    stores = _stores(settings, listener)
    owner = uuid.uuid4().hex
    try:
        extracted = steps.extract(stores, day, owner, dt.datetime.now(dt.UTC))
        assert not isinstance(extracted, steps.Skip), extracted.reason
        try:
            yield "extracted"
            encoded = steps.encode(extracted, settings.cold_prefix, settings.purge_batch_size)
            signed = steps.sign(
                encoded, settings.cold_prefix, settings.signing_key.get_secret_value()
            )
            uploaded = steps.upload_and_confirm(stores, encoded, signed)
            recorded = steps.record(stores, encoded, signed, uploaded, owner)
            yield "recorded"
            steps.purge(stores, recorded)
        except BaseException:
            steps.release(stores, layout.format_day(day), owner)
            raise
    finally:
        stores.close()


def archive_day(settings: Settings, day: dt.date, listener: Listener | None = None) -> None:
    for _ in run_steps(settings, day, listener):
        pass


def seed_interleaved(harness: Harness, days: list[dt.date], blocks: int = 3) -> None:
    """Chained events of ``days`` whose seqs interleave (day by day, 3 at a time),
    continuing the chain after everything seeded so far."""
    ats = shapes.interleaved_ats(days, blocks=blocks, per_block=3, rng=harness.rng)
    docs = shapes.chain(ats, harness.rng, gap_rate=0.1, after=harness._tail())
    harness.events.insert_many(docs)
    harness.seeded += docs


# -m slow adds the other day's purge one read later (the default: its record and purge
# together, between any two of our reads).
@pytest.mark.parametrize(
    "split",
    [
        pytest.param(False, id="record_and_purge"),
        pytest.param(True, id="purge_one_later", marks=pytest.mark.slow),
    ],
)
def test_another_days_run_between_any_two_of_our_reads_is_no_chain_break(
    harness: Harness, split: bool
) -> None:
    """Day B's run (record and purge together, or its purge one command later) lands
    before each command of day A's extract in turn; A's run must succeed every time."""
    settings, k, places = harness.settings, 0, 0
    a_thread = threading.get_ident()
    while True:
        k += 1
        a, b = due_day(2 * k + 1), due_day(2 * k)
        seed_interleaved(harness, [a, b])
        other = run_steps(settings, b)
        state = {"count": 0, "extracting": True, "b": "waiting"}

        def before(_: monitoring.CommandStartedEvent, k: int = k, other=other, state=state) -> None:
            if threading.get_ident() != a_thread or not state["extracting"]:
                return  # the lease keeper's renewals, or A's later steps
            state["count"] += 1
            if state["b"] == "waiting" and state["count"] == k:
                for step in other:  # B runs to its record (and purge, unless split)
                    if step == "recorded" and split:
                        state["b"] = "recorded"
                        return
                state["b"] = "done"
            elif state["b"] == "recorded":
                for _ in other:  # B's purge, one command of A's later
                    pass
                state["b"] = "done"

        run = run_steps(settings, a, Listener(before))
        assert next(run) == "extracted", f"B's run before A's command {k}"
        state["extracting"] = False
        for _ in run:  # A's run to its end
            pass
        if state["b"] == "waiting":  # A's extract has fewer commands than k: all covered
            archive_day(settings, b)
            break
        for _ in other:
            pass
        places += 1
    assert places >= 8, f"A's extract issued only {places} commands: is it still reading?"
    harness.assert_invariant()


def backfill_at_once(harness: Harness, rounds: int, days_at_once: int, seed: int) -> None:
    """``rounds`` times: ``days_at_once`` days whose seqs interleave, archived on threads
    started at once, with MongoDB commands delayed by up to 3 ms at random (latency that
    varies, so the runs interleave differently every time) and starts staggered."""
    rng, lock = random.Random(seed), threading.Lock()

    def jitter(_: monitoring.CommandStartedEvent) -> None:
        with lock:
            delay = rng.random() * 0.003
        time.sleep(delay)

    settings = harness.settings
    for r in range(rounds):
        days = [due_day(r * days_at_once + i) for i in range(days_at_once)]
        seed_interleaved(harness, sorted(days), blocks=4)
        starts = [rng.random() * 0.2 for _ in days]

        def call(day: dt.date, start: float) -> Callable[[], None]:
            def go() -> None:
                time.sleep(start)
                archive_day(settings, day, Listener(jitter))

            return go

        results = run_at_once([call(d, s) for d, s in zip(days, starts, strict=True)])
        failed = [repr(r) for r in results if isinstance(r, BaseException)]
        assert not failed, f"round {r}: {failed}"
    harness.assert_invariant()


def test_interleaved_days_archived_at_once_never_break_falsely(harness: Harness) -> None:
    backfill_at_once(harness, rounds=6, days_at_once=4, seed=17)


@pytest.mark.slow
def test_interleaved_days_archived_at_once_many_times(harness: Harness) -> None:
    backfill_at_once(harness, rounds=60, days_at_once=5, seed=1717)

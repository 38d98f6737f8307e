"""Runs that race: the same day launched several times at once, and the schedule, a
backfill and a manual run of overlapping days at once. The day's lease, the unique
(day, part) index and the re-checks before every irreversible step give one result:
one part per day, every event archived once, nothing lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from dagster import build_schedule_context

from audit_archive.format import layout
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages, run_at_once


@pytest.mark.parametrize("runs", [2, 5])
def test_runs_of_the_same_day_at_once_give_one_part(harness: Harness, runs: int) -> None:
    day = due_day(2)
    harness.seed({day: 60, due_day(-2): 5})

    results = run_at_once([lambda: harness.run(day) for _ in range(runs)])

    for r in results:
        assert not isinstance(r, BaseException), r
        assert r.success, failure_messages(r)
    [record] = harness.records(day)
    assert record["part"] == 1 and record["eventCount"] == 60
    writers = [r for r in results if r.run_id == record["runId"]]
    assert len(writers) == 1, "exactly one run wrote the part; the others changed nothing"
    harness.assert_invariant()


def test_schedule_backfill_and_manual_runs_of_overlapping_days_at_once(harness: Harness) -> None:
    from audit_archive.definitions import audit_archive_schedule, defs

    days = [due_day(n) for n in (3, 2, 1, 0)]
    harness.seed({d: 30 for d in days} | {due_day(-2): 4})
    request = audit_archive_schedule.evaluate_tick(
        build_schedule_context(
            scheduled_execution_time=dt.datetime.now(dt.UTC),
            repository_def=defs.get_repository_def(),
        )
    ).run_requests[0]
    assert request.partition_key == layout.format_day(days[-1]), "the newest due day"

    def scheduled() -> Any:
        return harness.run(request.partition_key, tags=dict(request.tags))

    def backfill(day: dt.date) -> Callable[[], Any]:
        return lambda: harness.run(day, tags={"dagster/backfill": "racebf"})

    def manual(day: dt.date) -> Callable[[], Any]:
        return lambda: harness.run(day)

    calls = [scheduled, *(backfill(d) for d in days), manual(days[-1]), manual(days[1])]
    results = run_at_once(calls)

    for r in results:
        assert not isinstance(r, BaseException), r
        assert r.success, failure_messages(r)
    records = harness.records()
    assert [(r["day"], r["part"]) for r in records] == [(layout.format_day(d), 1) for d in days]
    assert all(r["eventCount"] == 30 for r in records)
    harness.assert_invariant()

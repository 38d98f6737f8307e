"""The catch-up sensor: every due day without a batch record and without a queued or
running run is requested, oldest first; a failed day is asked for again the next day,
not in a tight loop; the sensor is off unless ARCHIVE_ENABLED=true."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from audit_archive.archive import catchup
from audit_archive.defs.archive_asset import build_archive_job, cold_archive_asset
from audit_archive.defs.partitions import daily_partitions
from audit_archive.defs.resources import resources
from audit_archive.defs.sensors import SENSOR_NAME, build_catchup_sensor
from audit_archive.format import layout
from audit_archive.settings import DefinitionSettings
from audit_archive_tests.support.benchmarks import run_benchmark
from audit_archive_tests.support.harness import RETENTION, Harness, due_day

# -- the plan (pure) ----------------------------------------------------------------------


def _dates(*texts: str) -> list[dt.date]:
    return [dt.date.fromisoformat(t) for t in texts]


def test_plan_requests_missing_days_oldest_first() -> None:
    due = _dates("2026-01-03", "2026-01-01", "2026-01-02", "2026-01-04")
    decision = catchup.plan(due, archived=_dates("2026-01-02"), in_flight=[], tried_today=[])
    assert decision.to_request == tuple(_dates("2026-01-01", "2026-01-03", "2026-01-04"))
    assert (decision.due, decision.archived, decision.deferred) == (4, 1, 0)


def test_plan_leaves_out_days_in_flight_or_already_tried_today() -> None:
    due = _dates(*(f"2026-01-0{i}" for i in range(1, 6)))
    decision = catchup.plan(
        due,
        archived=_dates("2026-01-01"),
        in_flight=_dates("2026-01-02"),
        tried_today=_dates("2026-01-03"),
    )
    assert decision.to_request == tuple(_dates("2026-01-04", "2026-01-05"))
    assert (decision.in_flight, decision.tried_today) == (1, 1)
    assert "1 queued or running" in decision.summary()
    assert "1 already tried today" in decision.summary()


def test_plan_caps_requests_per_tick_and_defers_the_rest() -> None:
    due = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(250)]
    decision = catchup.plan(due, [], [], [], limit=100)
    assert decision.to_request == tuple(due[:100])
    assert decision.deferred == 150
    assert "150 left for the next ticks" in decision.summary()


def test_run_key_is_the_day_and_the_date_of_the_request() -> None:
    key = catchup.run_key(dt.date(2026, 5, 1), dt.date(2026, 8, 30))
    assert key == "2026-05-01:2026-08-30"
    assert catchup.day_of_run_key(key) == dt.date(2026, 5, 1)
    assert catchup.day_of_run_key("verify:2026-08-30") is None


# -- the sensor against real Mongo and a real Dagster instance ------------------------------

FIRST = 5  # the test's partitions start at due_day(FIRST): six due days


def _settings(enabled: bool = False) -> DefinitionSettings:
    return DefinitionSettings(
        start_date=due_day(FIRST), run_hour_utc=3, enabled=enabled, retention_days=RETENTION
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def wiring():
    partitions = daily_partitions(_settings())
    job = build_archive_job(partitions)
    return partitions, job


def _definitions(partitions, job, sensor=None) -> Definitions:
    return Definitions(
        assets=[cold_archive_asset(partitions)],
        jobs=[job],
        sensors=[sensor] if sensor else [],
        resources=resources(),
    )


def _resolved(partitions, job):
    return _definitions(partitions, job).resolve_job_def(job.name)


def _tick(sensor, instance: DagsterInstance):
    # As the daemon does: in its code location, the resource set up for the tick and
    # torn down after it.
    definitions = _definitions(sensor.job.partitions_def, sensor.job, sensor)
    with build_sensor_context(
        instance=instance,
        resources=resources(),
        definitions=definitions,
        sensor_name=SENSOR_NAME,
    ) as context:
        return sensor.evaluate_tick(context)


def _add_run(instance: DagsterInstance, job, day: str, status: DagsterRunStatus) -> None:
    job = _resolved(job.partitions_def, job)
    """A run of the day in the instance, as the UI, a backfill or the schedule makes it
    (a queued run must name where its code lives)."""
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(
            InProcessCodeLocationOrigin(
                LoadableTargetOrigin(module_name="audit_archive.definitions", attribute="defs")
            ),
            "__repository__",
        ),
        job.name,
    )
    instance.create_run_for_job(
        job_def=job, tags={"dagster/partition": day}, status=status, remote_job_origin=origin
    )


def _days(n: int) -> str:
    return layout.format_day(due_day(n))


def test_sensor_requests_every_due_day_without_a_batch_record_or_run(
    harness: Harness, instance: DagsterInstance, wiring
) -> None:
    partitions, job = wiring
    harness.seed({due_day(n): 5 for n in range(FIRST + 1)})
    assert harness.run(due_day(3)).success  # archived: has a batch record
    _add_run(instance, job, _days(1), DagsterRunStatus.QUEUED)  # waits in the run queue
    _add_run(instance, job, _days(2), DagsterRunStatus.STARTED)  # running now
    _add_run(instance, job, _days(4), DagsterRunStatus.CANCELED)  # ended: day still missing
    sensor = build_catchup_sensor(job, partitions, _settings())

    data = _tick(sensor, instance)

    today = dt.datetime.now(dt.UTC).date()
    requested = [(r.partition_key, r.run_key) for r in data.run_requests]
    assert requested == [(_days(n), f"{_days(n)}:{today.isoformat()}") for n in (5, 4, 0)], (
        "oldest first; not the archived day, not the queued or the running one"
    )
    assert all(r.job_name in (None, job.name) for r in data.run_requests)


def test_a_failed_day_is_tried_again_the_next_day_not_in_a_loop(
    harness: Harness, instance: DagsterInstance, wiring
) -> None:
    partitions, job = wiring
    seeded = harness.seed({due_day(n): 5 for n in range(FIRST + 1)}, gap_rate=0)
    for n in range(-1, FIRST + 1):  # -1: the day that becomes due tomorrow
        if n != 2:
            harness.batches.insert_one({"day": _days(n), "part": 1, "eventCount": 0})
    victim = next(e for e in seeded if e["at"].date() == due_day(2))
    harness.events.update_one({"_id": victim["_id"]}, {"$set": {"action": "tampered"}})
    today = dt.datetime.now(dt.UTC)
    key_today = catchup.run_key(layout.parse_day(_days(2)), today.date())
    # The run the sensor launched this morning, exactly as the daemon tags it; it fails.
    failed = _resolved(partitions, job).execute_in_process(
        partition_key=_days(2),
        instance=instance,
        raise_on_error=False,
        tags={"dagster/sensor_name": SENSOR_NAME, "dagster/run_key": key_today},
    )
    assert not failed.success

    later_today = _tick(build_catchup_sensor(job, partitions, _settings()), instance)
    tomorrow = today + dt.timedelta(days=1)
    next_day = _tick(
        build_catchup_sensor(job, partitions, _settings(), clock=lambda: tomorrow), instance
    )

    assert later_today.run_requests == []
    assert "1 already tried today" in (later_today.skip_message or "")
    assert [(r.partition_key, r.run_key) for r in next_day.run_requests] == [
        (_days(2), catchup.run_key(layout.parse_day(_days(2)), tomorrow.date()))
    ]


def test_sensor_skips_with_a_reason_when_every_due_day_is_archived(
    harness: Harness, instance: DagsterInstance, wiring
) -> None:
    partitions, job = wiring
    for n in range(FIRST + 1):
        harness.batches.insert_one({"day": _days(n), "part": 1, "eventCount": 0})

    data = _tick(build_catchup_sensor(job, partitions, _settings()), instance)

    assert data.run_requests == []
    assert data.skip_message.startswith("nothing to catch up: 6 due day(s): 6 archived")


def test_sensor_is_off_unless_archive_enabled() -> None:
    partitions = daily_partitions(_settings())
    job = build_archive_job(partitions)
    off = build_catchup_sensor(job, partitions, _settings(enabled=False))
    on = build_catchup_sensor(job, partitions, _settings(enabled=True))
    assert off.default_status == DefaultSensorStatus.STOPPED
    assert on.default_status == DefaultSensorStatus.RUNNING


def test_the_code_location_has_the_sensor_for_the_archive_job() -> None:
    from audit_archive.definitions import defs

    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert sensor.job_name == "audit_archive_job"
    assert "archive" in sensor.required_resource_keys


def test_a_tick_that_requests_runs_names_the_dates() -> None:
    due = _dates(*(f"2026-01-0{i}" for i in range(1, 8)))
    decision = catchup.plan(
        due, archived=_dates("2026-01-04"), in_flight=[], tried_today=_dates("2026-01-07")
    )
    assert (
        decision.requested() == "requesting 5 days: 2026-01-01..2026-01-03, 2026-01-05..2026-01-06"
    )
    one = catchup.plan(_dates("2026-01-01"), [], [], [])
    assert one.requested() == "requesting 1 day: 2026-01-01"


@pytest.mark.e2e
def test_the_catchup_benchmark_runs_through_the_daemon_and_reports_every_field() -> None:
    """benchmarks/bench_catchup.py at a tiny size, so it never rots (figures: docs)."""
    report = run_benchmark("bench_catchup.py", "--days", "2")
    assert report["days"] == 2 == report["days_archived"] and report["failed_runs"] == []
    assert report["seconds_per_day"] > 0 and report["run_seconds_median"] > 0
    assert set(report["one_run"]) == {
        "worker_start_to_run_start",
        "resources",
        "until_first_op",
        "ops",
        "total",
    }

"""The catch-up sensor: archives the days the daily schedule missed.

The schedule asks only for the newest due day. Days missed while it was off, while the
daemon was down, or because their run failed are found here: every due day without a
batch record and without a queued or running run is requested, oldest first. The rules
live in catchup.py; this module reads the two sources of truth (batch records in Mongo,
runs in the Dagster instance) and turns the plan into run requests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from dagster import (
    AssetKey,
    DagsterRun,
    DagsterRunStatus,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from audit_archive.archive import catchup
from audit_archive.defs.archive_asset import AssetJob
from audit_archive.defs.names import ARCHIVE_JOB, COLD_ARCHIVE_ASSET, PARTITION_TAG
from audit_archive.defs.partitions import partition_day, partition_key
from audit_archive.defs.resources import ArchiveResource
from audit_archive.settings import DefinitionSettings

SENSOR_NAME = "audit_archive_catchup_sensor"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_TAG = "dagster/sensor_name"
# Statuses in which a run may still archive its day: requesting the day again would
# only queue a second run behind it (which would then change nothing).
IN_FLIGHT = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# A tick is a few cheap queries; every 10 minutes finds a failed or missed day quickly
# without keeping the daemon busy.
INTERVAL_SECONDS = 600


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_catchup_sensor(
    archive_job: AssetJob,
    partitions: DailyPartitionsDefinition,
    settings: DefinitionSettings,
    *,
    clock: Callable[[], dt.datetime] = _utcnow,
    limit: int = catchup.MAX_REQUESTS_PER_TICK,
) -> SensorDefinition:
    """The sensor, running by default only when ARCHIVE_ENABLED=true (like the schedule)."""

    @sensor(
        name=SENSOR_NAME,
        job=archive_job,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING
        if settings.enabled
        else DefaultSensorStatus.STOPPED,
        description=(
            "Requests every due day that has no batch record and no queued or running "
            "run, oldest first, so days missed while the schedule was off or failing "
            "are archived without anyone remembering them. Run key <day>:<date>: a day "
            "whose run failed is tried again the next day, not in a loop."
        ),
    )
    def audit_archive_catchup_sensor(
        context: SensorEvaluationContext, archive: ArchiveResource
    ) -> SensorResult | SkipReason:
        now = clock()
        due = [partition_day(key) for key in partitions.get_partition_keys(current_time=now)]
        if not due:
            return SkipReason(
                f"no day is due yet (ARCHIVE_START_DATE {settings.start_date}, "
                f"{settings.retention_days}-day hot window)"
            )
        today = now.astimezone(dt.UTC).date()
        archived = archive.stores.batches.archived_days(due[0], due[-1])
        # Runs of the job and materializations launched from the asset page (Dagster's
        # implicit asset job) both archive their day.
        in_flight = _partitions_of(
            run
            for run in context.instance.get_runs(filters=RunsFilter(statuses=IN_FLIGHT))
            if _archives(run, COLD_ARCHIVE_ASSET)
        )
        tried_today = _days_requested_on(context, today)
        decision = catchup.plan(due, archived, in_flight, tried_today, limit)
        if not decision.to_request:
            return SkipReason(f"nothing to catch up: {decision.summary()}")
        context.log.info(f"{decision.requested()} ({decision.summary()})")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=catchup.run_key(day, today),
                    partition_key=partition_key(day),
                    tags={"audit_archive/requested_by": SENSOR_NAME},
                )
                for day in decision.to_request
            ]
        )

    return audit_archive_catchup_sensor


def _archives(run: DagsterRun, asset: AssetKey) -> bool:
    return run.job_name == ARCHIVE_JOB or asset in (run.asset_selection or ())


def _partitions_of(runs: Iterable[DagsterRun]) -> set[dt.date]:
    """The days the runs archive (a tag that names no day, refused when its run starts,
    names none)."""
    days = (_day_or_none(run.tags.get(PARTITION_TAG)) for run in runs)
    return {day for day in days if day is not None}


def _day_or_none(key: str | None) -> dt.date | None:
    try:
        return None if key is None else partition_day(key)
    except ValueError:
        return None


def _days_requested_on(context: SensorEvaluationContext, day: dt.date) -> set[dt.date]:
    """Days this sensor already asked for on ``day`` (UTC): their run keys are used up, so
    Dagster would drop a second request; leaving them out keeps room for other days."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    runs = context.instance.get_runs(
        filters=RunsFilter(tags={SENSOR_TAG: SENSOR_NAME}, created_after=start)
    )
    suffix = f":{partition_key(day)}"
    days = (
        catchup.day_of_run_key(run.tags[RUN_KEY_TAG])
        for run in runs
        if run.tags.get(RUN_KEY_TAG, "").endswith(suffix)
    )
    return {d for d in days if d is not None}

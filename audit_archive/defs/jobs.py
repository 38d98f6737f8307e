"""Partitions, the ``cold_archive`` asset, the archive job and its schedule, built from
the definition settings.

``cold_archive`` is a partitioned, graph-backed asset: its graph is the six ops of SPEC
section 6, in order, and ``audit_archive_job`` is the asset job that runs that graph for
one day. So a day is archived the same way from the asset page (Materialize), the job's
Launchpad, a backfill, the schedule, the catch-up sensor or headless with
``dagster asset materialize -m audit_archive.definitions --select cold_archive
--partition D``, and the asset's partitions and the job's Partitions tab read the same
materializations.
"""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetsDefinition,
    DagsterError,
    DagsterUnknownPartitionError,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    graph_asset,
    in_process_executor,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from audit_archive.defs.ops import (
    COLD_ARCHIVE_ASSET,
    extract_chained,
    purge_hot,
    record_batch,
    sign_manifest,
    to_jsonl_gz,
    upload_and_confirm,
)
from audit_archive.format import layout
from audit_archive.settings import DefinitionSettings

ARCHIVE_JOB = "audit_archive_job"
GROUP = "audit_archive"


class DayNotDueError(DagsterError):
    """A day that is not (or not yet) a partition was asked for: nothing changes. Not a
    DagsterUnknownPartitionError: Dagster's CLI replaces that one's message with its own."""


class ArchiveDays(DailyPartitionsDefinition):
    """The UTC days up to the newest due one (SPEC section 2). A day outside them, asked
    for through the API, CLI or a run request, is refused with a message that says why
    (not due yet, before ARCHIVE_START_DATE, not a day) instead of Dagster's bare
    "Could not find a partition"."""

    def validate_partition_key(self, partition_key, context) -> None:  # type: ignore[override]
        try:
            super().validate_partition_key(partition_key, context)
        except DagsterUnknownPartitionError:
            raise DayNotDueError(self.why_not(partition_key)) from None

    def why_not(self, partition_key: str, now: dt.datetime | None = None) -> str:
        retention = -self.end_offset
        try:
            day = layout.parse_day(partition_key)
        except ValueError:
            return (
                f"{partition_key!r} is not a partition of cold_archive: partitions are UTC "
                "days written YYYY-MM-DD. Nothing was changed."
            )
        start = self.start.date()
        if day < start:
            return (
                f"{partition_key} is not a partition: it is before ARCHIVE_START_DATE "
                f"({start.isoformat()}). Nothing was changed."
            )
        newest = layout.newest_due_day(now or dt.datetime.now(dt.UTC), retention)
        return (
            f"{partition_key} is not due yet: a day is archived once it is "
            f"{retention} days old (AUDIT_HOT_RETENTION_DAYS), at "
            f"{layout.due_at(day, retention):%Y-%m-%d %H:%M} UTC; the newest due day is "
            f"{layout.format_day(newest)}. Nothing was changed."
        )


def daily_partitions(settings: DefinitionSettings) -> ArchiveDays:
    """One partition per UTC day, ending at the newest due day: what is "missing" in the
    UI is due but not archived, and hot days cannot be launched."""
    return ArchiveDays(
        start_date=layout.format_day(settings.start_date),
        timezone="UTC",
        end_offset=-settings.retention_days,
    )


def cold_archive_asset(partitions: DailyPartitionsDefinition) -> AssetsDefinition:
    """The archive as an asset: partition D holds day D's signed gzip JSONL parts."""

    @graph_asset(
        name=COLD_ARCHIVE_ASSET.path[-1],
        partitions_def=partitions,
        group_name=GROUP,
        kinds={"s3", "mongodb"},
        description=(
            "Signed gzip JSONL parts in S3, one partition per archived UTC day. "
            "Materializing day D archives it: Mongo -> signed gzip JSONL in S3 -> batch "
            "record -> purge from hot. Safe to re-run: a finished day changes nothing "
            "(and still shows as materialized), an interrupted one converges."
        ),
    )
    def cold_archive():
        return purge_hot(
            record_batch(upload_and_confirm(sign_manifest(to_jsonl_gz(extract_chained()))))
        )

    return cold_archive


def build_archive_job(partitions: DailyPartitionsDefinition) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        name=ARCHIVE_JOB,
        selection=[COLD_ARCHIVE_ASSET],
        partitions_def=partitions,
        executor_def=in_process_executor,  # the ops share the run's staging files
        description=(
            "Archive one UTC day of chained audit events (materializes cold_archive for "
            "the day): extract_chained, to_jsonl_gz, sign_manifest, upload_and_confirm, "
            "record_batch, purge_hot. Safe to re-run."
        ),
        tags={"audit_archive/kind": "archive"},
    )


def build_archive_schedule(
    archive_job: UnresolvedAssetJobDefinition, settings: DefinitionSettings
) -> ScheduleDefinition:
    @schedule(
        name="audit_archive_schedule",
        job=archive_job,
        cron_schedule=f"0 {settings.run_hour_utc} * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING
        if settings.enabled
        else DefaultScheduleStatus.STOPPED,
        description="Requests the newest due day at ARCHIVE_RUN_HOUR_UTC:00 UTC. "
        "Days missed while it was off are found by the catch-up sensor.",
    )
    def audit_archive_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        day = layout.newest_due_day(context.scheduled_execution_time, settings.retention_days)
        if day < settings.start_date:
            return SkipReason(f"no day is due yet (ARCHIVE_START_DATE is {settings.start_date})")
        key = layout.format_day(day)
        return RunRequest(run_key=f"schedule:{key}", partition_key=key)

    return audit_archive_schedule

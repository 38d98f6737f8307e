"""Partitions, the archive job and its schedule, built from the definition settings."""

from __future__ import annotations

from dagster import (
    AssetSpec,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    in_process_executor,
    job,
    schedule,
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


def daily_partitions(settings: DefinitionSettings) -> DailyPartitionsDefinition:
    """One partition per UTC day, ending at the newest due day: what is "missing" in the
    UI is due but not archived, and hot days cannot be launched."""
    return DailyPartitionsDefinition(
        start_date=layout.format_day(settings.start_date),
        timezone="UTC",
        end_offset=-settings.retention_days,
    )


def build_archive_job(partitions: DailyPartitionsDefinition) -> JobDefinition:
    @job(
        name="audit_archive_job",
        partitions_def=partitions,
        executor_def=in_process_executor,  # the ops share the run's staging files
        description=(
            "Archive one UTC day of chained audit events: Mongo -> signed gzip JSONL in S3 "
            "-> batch record -> purge from hot. Safe to re-run: a finished day changes "
            "nothing, an interrupted one converges."
        ),
        tags={"audit_archive/kind": "archive"},
    )
    def audit_archive_job() -> None:
        purge_hot(record_batch(upload_and_confirm(sign_manifest(to_jsonl_gz(extract_chained())))))

    return audit_archive_job


def build_archive_schedule(
    archive_job: JobDefinition, settings: DefinitionSettings
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


def cold_archive_asset(partitions: DailyPartitionsDefinition) -> AssetSpec:
    """The archive as an asset: partition D is materialized by record_batch of D."""
    return AssetSpec(
        key=COLD_ARCHIVE_ASSET,
        partitions_def=partitions,
        description="Signed gzip JSONL parts in S3, one partition per archived UTC day. "
        "Materialized by audit_archive_job's record_batch step.",
        group_name="audit_archive",
        kinds={"s3"},
    )

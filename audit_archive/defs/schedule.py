"""The archive's daily schedule: the newest due day, at ARCHIVE_RUN_HOUR_UTC:00 UTC."""

from __future__ import annotations

from dagster import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
)

from audit_archive.defs.archive_asset import AssetJob
from audit_archive.settings import DefinitionSettings


def build_archive_schedule(
    archive_job: AssetJob, settings: DefinitionSettings
) -> ScheduleDefinition:
    """At ARCHIVE_RUN_HOUR_UTC:00 UTC, the partitions' newest day (the newest due day,
    since the partitions end there), run key = the day; nothing while no day is due.
    Days missed while it was off are found by the catch-up sensor (sensors.py)."""
    return build_schedule_from_partitioned_job(
        archive_job,
        name="audit_archive_schedule",
        hour_of_day=settings.run_hour_utc,
        minute_of_hour=0,
        default_status=DefaultScheduleStatus.RUNNING
        if settings.enabled
        else DefaultScheduleStatus.STOPPED,
        description="Requests the newest due day at ARCHIVE_RUN_HOUR_UTC:00 UTC. "
        "Days missed while it was off are found by the catch-up sensor.",
    )

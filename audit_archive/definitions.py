"""The code location: ``audit_archive.definitions:defs``. Wiring only.

Variables that shape the definitions (ARCHIVE_START_DATE, ARCHIVE_RUN_HOUR_UTC,
ARCHIVE_ENABLED, AUDIT_HOT_RETENTION_DAYS) are read here, when the location loads, and a
bad value stops the load with a message naming it. Connections and secrets are read by
the resources when a run starts.
"""

from __future__ import annotations

from dagster import Definitions

from .jobs import build_archive_job, build_archive_schedule, cold_archive_asset, daily_partitions
from .resources import ArchiveResource
from .restore_job import build_restore_job
from .settings import DefinitionSettings

SETTINGS = DefinitionSettings.from_env()
PARTITIONS = daily_partitions(SETTINGS)
audit_archive_job = build_archive_job(PARTITIONS)
audit_archive_schedule = build_archive_schedule(audit_archive_job, SETTINGS)
audit_restore_job = build_restore_job(PARTITIONS)

defs = Definitions(
    assets=[cold_archive_asset(PARTITIONS)],
    jobs=[audit_archive_job, audit_restore_job],
    schedules=[audit_archive_schedule],
    resources={"archive": ArchiveResource()},
)

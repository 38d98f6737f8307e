"""The code location: ``audit_archive.definitions:defs``. Wiring only.

Variables that shape the definitions (ARCHIVE_START_DATE, ARCHIVE_RUN_HOUR_UTC,
ARCHIVE_ENABLED, AUDIT_HOT_RETENTION_DAYS) are read here, when the location loads, and a
bad value stops the load with a message naming it. The connection and secret variables
are validated here too (no I/O), so a missing or short AUDIT_SIGNING_KEY is an error when
the code location starts, not at 03:00; the resources read them again, with connectivity
checks, when each run starts (bound with EnvVar, so the Resources tab shows names, not
values).
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from audit_archive.defs.archive_asset import build_archive_job, cold_archive_asset
from audit_archive.defs.partitions import daily_partitions
from audit_archive.defs.resources import resources
from audit_archive.defs.restore_job import build_restore_job
from audit_archive.defs.schedule import build_archive_schedule
from audit_archive.defs.sensors import build_catchup_sensor
from audit_archive.defs.verify_job import build_verify_job, build_verify_schedule
from audit_archive.settings import DefinitionSettings, Settings

SETTINGS = DefinitionSettings.from_env()
Settings.from_env()  # fail at start-up, naming the variable
PARTITIONS = daily_partitions(SETTINGS)
cold_archive = cold_archive_asset(PARTITIONS)
audit_archive_job = build_archive_job(PARTITIONS)
audit_archive_schedule = build_archive_schedule(audit_archive_job, SETTINGS)
audit_archive_catchup_sensor = build_catchup_sensor(audit_archive_job, PARTITIONS, SETTINGS)
audit_restore_job = build_restore_job(PARTITIONS)
audit_verify_job = build_verify_job()
audit_verify_schedule = build_verify_schedule(audit_verify_job, SETTINGS)

defs = Definitions(
    assets=[cold_archive],
    jobs=[audit_archive_job, audit_restore_job, audit_verify_job],
    schedules=[audit_archive_schedule, audit_verify_schedule],
    sensors=[audit_archive_catchup_sensor],
    # cold_storage (dagster_aws S3Resource), hot_store (MongoDB) and the archive that
    # uses both; connection values bound to the SPEC's variables (defs/resources.py).
    resources=resources(),
    # Every job without its own executor runs its ops in one process, Dagster's implicit
    # asset job included: the asset page's Materialize, asset backfills and
    # `dagster asset materialize` run cold_archive's six ops like audit_archive_job (they
    # share the run's staging files and the day's lease).
    executor=in_process_executor,
)

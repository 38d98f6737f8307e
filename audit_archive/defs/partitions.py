"""The archive's partitions: one per UTC day, from ARCHIVE_START_DATE to the newest due
day. The partition key (``YYYY-MM-DD``) is the day's only text form in the Dagster
wiring: the ops and the sensor parse it once into a ``datetime.date``."""

from __future__ import annotations

import datetime as dt

from dagster import DailyPartitionsDefinition

from audit_archive.format import layout
from audit_archive.settings import DefinitionSettings


def daily_partitions(settings: DefinitionSettings) -> DailyPartitionsDefinition:
    """One partition per UTC day, ending at the newest due day: what is "missing" in the
    UI is due but not archived, and hot days cannot be picked. A day outside them that
    is asked for anyway (a partition tag through GraphQL or the API) is refused when the
    run starts, before any op (ArchiveResource, defs/resources.py)."""
    return DailyPartitionsDefinition(
        start_date=layout.format_day(settings.start_date),
        timezone="UTC",
        end_offset=-settings.retention_days,
    )


def partition_day(partition_key: str) -> dt.date:
    """The day a partition key names (the one place the key is read as a day)."""
    return layout.parse_day(partition_key)


def partition_key(day: dt.date) -> str:
    """The partition key of ``day`` (what a run request or a materialization names)."""
    return layout.format_day(day)

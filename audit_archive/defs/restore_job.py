"""``audit_restore_job``: restore one archived day from the Dagster UI (Jobs ->
audit_restore_job -> Launchpad tab -> choose the day in the partition picker above the
config editor -> Launch Run). One thin op over restore.py; the run
fails, naming every reason, when the day has no record or fails verification, and then
nothing is written."""

# No `from __future__ import annotations` here: Dagster reads the op's Config annotation
# when the op is defined.
from dagster import (
    Config,
    DailyPartitionsDefinition,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from audit_archive.audit import restore
from audit_archive.defs.partitions import partition_day, partition_key
from audit_archive.defs.resources import ArchiveResource
from audit_archive.redact import redact


class RestoreConfig(Config):
    into: str = Field(
        default=restore.DEFAULT_COLLECTION,
        description="Target collection in the MONGODB_URI database (never the hot events "
        "or batches collection).",
    )


@op
def restore_day(
    context: OpExecutionContext, config: RestoreConfig, archive: ArchiveResource
) -> Output[int]:
    """Check every part of the day (signature, sha256, every event's hash), then insert
    its events into the target collection (identical documents already there are
    fine; different ones refuse the restore)."""
    stores = archive.stores
    try:
        result = restore.restore_day(
            stores, partition_day(context.partition_key), config.into, log=context.log.info
        )
    except (
        restore.NoRecordError,
        restore.RestoreRefused,
        restore.RestoreConflict,
        ValueError,
    ) as e:
        raise Failure(description=redact(str(e), stores.settings.secrets)) from None
    return Output(
        result.events,
        metadata={
            "day": partition_key(result.day),
            "collection": f"{result.database}.{result.collection}",
            "parts": ", ".join(str(p) for p in result.parts),
            "events": MetadataValue.int(result.events),
            "inserted": MetadataValue.int(result.inserted),
            "already_there": MetadataValue.int(result.already_there),
        },
    )


def build_restore_job(partitions: DailyPartitionsDefinition) -> JobDefinition:
    @job(
        name="audit_restore_job",
        partitions_def=partitions,
        executor_def=in_process_executor,
        description=(
            "Restore one archived UTC day into MongoDB (default collection "
            f"{restore.DEFAULT_COLLECTION}) after checking signatures, sha256 and every "
            "event's hash. Idempotent: documents already there must be identical."
        ),
        tags={"audit_archive/kind": "restore"},
    )
    def audit_restore_job() -> None:
        restore_day()

    return audit_restore_job

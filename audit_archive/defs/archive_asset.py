"""The ``cold_archive`` asset and ``audit_archive_job``, the asset job that archives one day.

``cold_archive`` is a partitioned, graph-backed asset: its graph is the six ops of SPEC
section 6, in order, and ``audit_archive_job`` is the asset job that runs that graph for
one day. So a day is archived the same way from the asset page (Materialize), the job's
Launchpad, a backfill, the schedule (schedule.py), the catch-up sensor (sensors.py) or
headless with ``dagster asset materialize -m audit_archive.definitions --select
cold_archive --partition D``, and the asset's partitions (partitions.py) and the job's
Partitions tab read the same materializations.
"""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetsDefinition,
    DailyPartitionsDefinition,
    define_asset_job,
    graph_asset,
    in_process_executor,
)

from audit_archive.defs.names import ARCHIVE_JOB, COLD_ARCHIVE_ASSET
from audit_archive.defs.ops import (
    extract_chained,
    purge_hot,
    record_batch,
    sign_manifest,
    to_jsonl_gz,
    upload_and_confirm,
)

__all__ = ["ARCHIVE_JOB", "GROUP", "AssetJob", "build_archive_job", "cold_archive_asset"]

GROUP = "audit_archive"
# What define_asset_job returns: its class is not part of Dagster's public API.
AssetJob = Any


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
        # Each op returns the day's part plus what it adds; a later op that needs an
        # earlier one's facts takes that op's output too (archive/results.py).
        extracted = extract_chained()
        encoded = to_jsonl_gz(extracted)
        signed = sign_manifest(encoded)
        uploaded = upload_and_confirm(encoded, signed)
        return purge_hot(record_batch(encoded, signed, uploaded))

    return cold_archive


def build_archive_job(partitions: DailyPartitionsDefinition) -> AssetJob:
    return define_asset_job(
        name=ARCHIVE_JOB,
        selection=[COLD_ARCHIVE_ASSET],
        partitions_def=partitions,
        # The ops share the run's staging files and the day's lease: one process. The
        # asset page's runs (Dagster's implicit asset job) get the same executor from
        # Definitions(executor=...) in definitions.py.
        executor_def=in_process_executor,
        description=(
            "Archive one UTC day of chained audit events (materializes cold_archive for "
            "the day): extract_chained, to_jsonl_gz, sign_manifest, upload_and_confirm, "
            "record_batch, purge_hot. Safe to re-run."
        ),
        tags={"audit_archive/kind": "archive"},
    )

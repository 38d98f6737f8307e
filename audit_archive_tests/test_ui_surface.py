"""What an operator sees in the Dagster UI: the cold_archive asset's partitions, a re-run
that says it changed nothing, failures that say what to do, and the run queue that keeps
backfills to one run per day and a capped total."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, QueuedRunCoordinator, instance_for_test

from audit_archive_tests.support.harness import Harness, due_day

REPO = Path(__file__).resolve().parents[1]
COLD_ARCHIVE = AssetKey("cold_archive")


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def test_a_run_materializes_the_days_cold_archive_partition_with_the_batch(
    harness: Harness, instance: DagsterInstance
) -> None:
    day, other = due_day(2), due_day(1)
    harness.seed({day: 50, other: 10})

    assert harness.run(day, instance=instance).success

    assert instance.get_materialized_partitions(COLD_ARCHIVE) == {str(day)}
    event = instance.get_latest_materialization_event(COLD_ARCHIVE)
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    [record] = harness.records(day)
    assert meta["events"] == 50 == record["eventCount"]
    assert meta["seq_range"] == f"{record['startSeq']}-{record['endSeq']}"
    assert meta["bytes_compressed"] == record["bytesCompressed"]
    assert meta["bytes_uncompressed"] == record["bytesUncompressed"]
    assert meta["compression_ratio"] == round(
        record["bytesUncompressed"] / record["bytesCompressed"], 2
    )
    assert meta["jsonl_key"] == record["jsonlKey"] == f"audit/day={day}/part-0001.jsonl.gz"
    assert meta["manifest_key"] == record["manifestKey"]
    assert meta["manifest_sha256"] == record["manifestSha256"]
    assert event.run_id == record["runId"]


def test_rerunning_an_archived_day_succeeds_and_says_it_changed_nothing(
    harness: Harness, instance: DagsterInstance
) -> None:
    day = due_day(1)
    harness.seed({day: 20})
    assert harness.run(day, instance=instance).success

    again = harness.run(day, instance=instance)

    assert again.success
    assert again.get_asset_materialization_events() == [], "no second materialization"
    [observation] = again.get_asset_observation_events()
    obs = observation.event_specific_data.asset_observation
    assert obs.asset_key == COLD_ARCHIVE and obs.partition == str(day)
    assert obs.metadata["changed"].value == "nothing"
    assert "already archived (part 1)" in obs.metadata["reason"].value
    assert len(harness.records(day)) == 1


def test_a_chain_break_fails_the_run_saying_what_broke_and_what_to_do(
    harness: Harness, instance: DagsterInstance
) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 12}, gap_rate=0)
    victim = seeded[7]
    harness.events.update_one({"_id": victim["_id"]}, {"$set": {"meta.note": "edited"}})

    result = harness.run(day, instance=instance)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    # What the UI shows for the failed step: the message, not a chained driver traceback.
    assert data.error.message.split(": ", 1)[1].startswith(
        f"chain break at seq {victim['seq']}: event re-hash mismatch. Nothing was deleted"
    )
    assert "Nothing was deleted" in data.error.message
    assert "re-run the day" in data.error.message
    assert data.error.cause is None
    assert data.user_failure_data.metadata["chain_break_seqs"].value == str(victim["seq"])
    assert data.user_failure_data.metadata["deleted"].value == 0
    assert instance.get_materialized_partitions(COLD_ARCHIVE) == set()


def test_dagster_yaml_queues_runs_one_per_day_with_a_total_cap(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert {
            "key": "dagster/partition",
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        } in queue.tag_concurrency_limits
    finally:
        instance.dispose()

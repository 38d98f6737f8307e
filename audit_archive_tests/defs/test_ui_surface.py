"""What an operator sees in the Dagster UI: the cold_archive asset's partitions, a re-run
that says it changed nothing, failures that say what to do, and the run queue that keeps
backfills to one run per day and a capped total."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, Failure, QueuedRunCoordinator, instance_for_test

from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages, step_events

REPO = Path(__file__).resolve().parents[2]
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


def test_rerunning_an_archived_day_succeeds_says_it_changed_nothing_and_stays_materialized(
    harness: Harness, instance: DagsterInstance
) -> None:
    day = due_day(1)
    harness.seed({day: 20})
    assert harness.run(day, instance=instance).success
    # A day archived by an earlier run, whose materialization this instance never saw
    # (another Dagster instance, the CLI), shows as materialized after a re-run.
    fresh = instance_for_test()
    with fresh as other:
        again = harness.run(day, instance=other)

        assert again.success
        [materialization] = again.get_asset_materialization_events()
        mat = materialization.event_specific_data.materialization
        assert mat.asset_key == COLD_ARCHIVE and mat.partition == str(day)
        assert mat.metadata["changed"].value == "nothing"
        assert "already archived (part 1)" in mat.metadata["reason"].value
        assert other.get_materialized_partitions(COLD_ARCHIVE) == {str(day)}
    assert len(harness.records(day)) == 1


def test_a_run_without_a_day_says_how_to_pick_one(harness: Harness) -> None:
    from dagster import build_op_context

    from audit_archive.definitions import defs
    from audit_archive.defs.ops import NO_PARTITION, extract_chained

    resources = {"archive": defs.resources["archive"]}
    with build_op_context(resources=resources) as context, pytest.raises(Failure) as failed:
        list(extract_chained(context))
    assert failed.value.description == NO_PARTITION
    for where in ("Materialize", "Launchpad", "dagster asset materialize", "--partition"):
        assert where in NO_PARTITION


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("2999-01-01", "is not due yet: a day is archived once it is"),
        ("1999-01-01", "is before ARCHIVE_START_DATE"),
    ],
)
def test_a_day_that_is_not_a_partition_is_refused_with_the_reason_before_any_op(
    harness: Harness, key: str, says: str
) -> None:
    """A partition tag is what GraphQL, the Launchpad and a run request send; Dagster
    does not check it against the partitions, so the run-start check does."""
    not_due = harness.seed({due_day(-2): 5})

    result = harness.run_tagged(key)

    assert not result.success
    assert not step_events(result, "STEP_START"), "no op ran"
    assert says in failure_messages(result) and "Nothing was changed" in failure_messages(result)
    assert harness.records() == [] and harness.object_keys() == []
    assert harness.events.count_documents({"_id": {"$in": [e["_id"] for e in not_due]}}) == 5


def test_a_day_outside_the_partitions_given_as_a_partition_key_is_refused_by_dagster(
    harness: Harness,
) -> None:
    """Where Dagster picks the key from the partitions itself (the API's partition_key,
    the CLI's --partition), it refuses an unknown one before any run exists."""
    from dagster import DagsterUnknownPartitionError

    with pytest.raises(DagsterUnknownPartitionError, match="2999-01-01"):
        harness.run("2999-01-01")
    # A tag that is no date at all: Dagster cannot create the run.
    with pytest.raises(ValueError, match="yesterday"):
        harness.run_tagged("yesterday")
    assert harness.records() == []


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


def test_each_verified_day_shows_its_verify_result_on_the_asset(
    harness: Harness, instance: DagsterInstance
) -> None:
    from audit_archive.definitions import defs

    days = [due_day(3), due_day(2)]
    harness.seed({d: 15 for d in days})
    for d in days:
        assert harness.run(d, instance=instance).success
    verify_job = defs.resolve_job_def("audit_verify_job")
    span = {"from_day": str(days[0]), "to_day": str(days[1])}
    run_config = {"ops": {"verify_archive": {"config": span}}}

    clean = verify_job.execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )

    assert clean.success
    seen = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in clean.get_asset_observation_events()
    }
    assert set(seen) == {str(d) for d in days}, "one observation per archived day"
    for obs in seen.values():
        assert obs.asset_key == COLD_ARCHIVE
        assert obs.metadata["verify_status"].value == "valid"
        assert obs.metadata["parts"].value == 1 and obs.metadata["events"].value == 15

    [record] = harness.records(days[0])
    harness.s3.delete_object(Bucket=harness.bucket, Key=record["manifestKey"])
    failed = verify_job.execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )

    assert not failed.success
    statuses = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in failed.get_asset_observation_events()
    }
    assert statuses[str(days[0])].metadata["verify_status"].value == "orphan"
    assert "manifest" in statuses[str(days[0])].metadata["verify_findings"].value
    assert statuses[str(days[1])].metadata["verify_status"].value == "valid"

"""Every materialization of a day carries the day's current state (issue 21): its parts,
events, checksums, place in the signed log and the log's size, whether the run archived
a part or changed nothing; and a failed attempt at an archived day leaves the partition
materialized (what operations.md promises: green is archived by any run), while a day
that never got archived shows its failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import AssetKey, AssetPartitionStatus, DagsterInstance, instance_for_test

from audit_archive.archive import steps
from audit_archive_tests.support.harness import LOG_KEY, Harness, due_day
from audit_archive_tests.support.launch import latest_materialization_metadata

COLD_ARCHIVE = AssetKey("cold_archive")
DAY_STATE = (
    "day",
    "part",
    "parts",
    "day_events",
    "seq_range",
    "jsonl_sha256",
    "manifest_sha256",
    "checksums",
    "log_index",
    "log_size",
)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _status(instance: DagsterInstance, day) -> AssetPartitionStatus | None:
    from audit_archive.definitions import PARTITIONS

    return instance.get_status_by_partition(COLD_ARCHIVE, [str(day)], PARTITIONS)[str(day)]


def test_a_rerun_that_changes_nothing_shows_the_days_parts_events_checksums_and_log(
    harness: Harness, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_LOG_SIGNING_KEY", LOG_KEY)
    day = due_day(4)
    harness.seed({day: 30, due_day(3): 5})
    assert harness.run(day, instance=instance).success
    harness.append([harness.seeded[0]["at"]])  # a late event of the day: part 2
    assert harness.run(day, instance=instance).success
    archived = latest_materialization_metadata(instance, COLD_ARCHIVE, str(day))

    again = harness.run(day, instance=instance)

    assert again.success
    noop = latest_materialization_metadata(instance, COLD_ARCHIVE, str(day))
    assert noop["changed"] == "nothing" and archived["changed"] == "new part"
    records = harness.records(day)
    assert noop["parts"] == 2 and noop["day_events"] == 31 == sum(r["eventCount"] for r in records)
    assert noop["part"] == 2 and noop["log_index"] == records[-1]["logIndex"]
    assert noop["log_size"] == 2
    for r in records:
        assert r["manifestSha256"] in noop["checksums"] and r["jsonlSha256"] in noop["checksums"]
    assert {k: noop[k] for k in DAY_STATE} == {k: archived[k] for k in DAY_STATE}


def test_a_failed_attempt_at_an_archived_day_leaves_it_materialized(
    harness: Harness, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    day, fresh = due_day(4), due_day(3)
    harness.seed({day: 10, fresh: 10})
    assert harness.run(day, instance=instance).success
    harness.append([harness.seeded[0]["at"]])  # part 2 to archive

    def unreachable(*args, **kwargs):
        raise ConnectionError("S3 is unreachable")

    monkeypatch.setattr(steps, "upload_and_confirm", unreachable)
    failed = harness.run(day, instance=instance)
    never = harness.run(fresh, instance=instance)

    assert not failed.success and not never.success
    assert _status(instance, day) is AssetPartitionStatus.MATERIALIZED, "part 1 is archived"
    state = latest_materialization_metadata(instance, COLD_ARCHIVE, str(day))
    assert state["parts"] == 1 and state["changed"].startswith("nothing yet")
    assert _status(instance, fresh) is AssetPartitionStatus.FAILED, "nothing of it is archived"

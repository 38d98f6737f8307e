"""Every way of archiving a day runs the six ops in one process and leaves the same
materialization (issue 21): the headless CLI (`dagster asset materialize`, `dagster job
execute`), the schedule's and the catch-up sensor's run requests, and a run launched
with a partition tag. The executor is read from each real run's records, not from the
definitions. The asset page and GraphQL are in test_e2e_launch.py (through dagster dev)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_schedule_context, build_sensor_context

from audit_archive.format import layout
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.launch import (
    dagster_cli,
    execution_of,
    latest_materialization_metadata,
)

LOCATION = ["-m", "audit_archive.definitions"]
DAY_STATE = ("parts", "day_events", "checksums", "manifest_sha256", "jsonl_sha256", "seq_range")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME as a deployment has one (the UI reads the runs from it)."""
    path = tmp_path / "dagster-home"
    path.mkdir()
    return path


def _env(harness: Harness, home: Path) -> dict[str, str]:
    return {**harness.env, "DAGSTER_HOME": str(home)}


def _only_run(home: Path) -> tuple[DagsterInstance, str]:
    instance = DagsterInstance.from_config(str(home))
    [run] = instance.get_runs(limit=1)
    return instance, run.run_id


def _last_archive_line(output: str) -> str:
    """The last line the archive itself logged (Dagster's closing lines follow it)."""
    return [line for line in output.splitlines() if " - summary: " in line][-1]


def assert_one_process(home: Path, run_id: str, instance: DagsterInstance) -> None:
    execution = execution_of(instance, run_id)
    assert execution.executor == "in_process", execution
    assert len(execution.step_pids) == 1, f"every step in one process: {execution}"


def test_dagster_asset_materialize_runs_the_day_in_one_process_and_says_what_it_did(
    harness: Harness, home: Path
) -> None:
    """The documented headless way (docs/dagster.md): Dagster's own CLI, no webserver.
    Its implicit asset job gets the in-process executor from Definitions."""
    day = due_day(3)
    seeded = harness.seed({day: 25})
    materialize = ["asset", "materialize", *LOCATION, "--select", "cold_archive"]

    done = dagster_cli([*materialize, "--partition", str(day)], _env(harness, home))

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [record] = harness.records(day)
    assert record["eventCount"] == len(seeded) == 25
    assert harness.events.count_documents({"_id": {"$in": [e["_id"] for e in seeded]}}) == 0
    instance, run_id = _only_run(home)
    with instance:
        assert instance.get_run_by_id(run_id).job_name == "__ASSET_JOB"
        assert_one_process(home, run_id, instance)
        meta = latest_materialization_metadata(instance, _asset(), str(day))
    assert meta["parts"] == 1 and meta["day_events"] == 25
    assert meta["manifest_sha256"] == record["manifestSha256"]
    assert record["manifestSha256"] in meta["checksums"]
    assert _last_archive_line(done.stderr).endswith(
        f"summary: {day} new part: part 1, deleted 25 from hot; the day has 1 part(s), 25 events"
    )

    # Again: nothing changes, and the materialization still carries the day's state.
    again = dagster_cli([*materialize, "--partition", str(day)], _env(harness, home))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "changed nothing" in _last_archive_line(again.stderr)
    with DagsterInstance.from_config(str(home)) as instance:
        meta_again = latest_materialization_metadata(instance, _asset(), str(day))
    assert meta_again["changed"] == "nothing"
    for key in DAY_STATE:
        assert meta_again[key] == meta[key], key

    # A day that is not due: Dagster's CLI refuses a key outside the partitions before
    # any run exists ("not a partition", SPEC section 2); nothing changes.
    not_due = harness.seed({due_day(-2): 5})
    refused = dagster_cli([*materialize, "--partition", str(due_day(-2))], _env(harness, home))
    assert refused.returncode != 0
    assert f"partition key `{due_day(-2)}`" in refused.stderr, refused.stderr[-3000:]
    assert harness.events.count_documents({"_id": {"$in": [e["_id"] for e in not_due]}}) == 5
    assert len(harness.records()) == 1


def test_dagster_job_execute_runs_the_day_in_one_process_and_refuses_a_day_not_due(
    harness: Harness, home: Path
) -> None:
    day = due_day(2)
    harness.seed({day: 12})
    execute = ["job", "execute", *LOCATION, "-j", "audit_archive_job", "--tags"]

    done = dagster_cli([*execute, json.dumps({"dagster/partition": str(day)})], _env(harness, home))

    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["eventCount"] for r in harness.records(day)] == [12]
    instance, run_id = _only_run(home)
    with instance:
        assert_one_process(home, run_id, instance)
    assert _last_archive_line(done.stderr).endswith("the day has 1 part(s), 12 events")

    # With a partition tag nothing in Dagster checks the day: the run-start check does.
    late = due_day(-3)
    not_due = harness.seed({late: 4})
    refused = dagster_cli(
        [*execute, json.dumps({"dagster/partition": str(late)})], _env(harness, home)
    )
    assert refused.returncode != 0
    assert f"{late} is not due yet" in refused.stderr and "Nothing was changed" in refused.stderr
    assert "STEP_START" not in refused.stderr, "refused before any op"
    assert harness.events.count_documents({"_id": {"$in": [e["_id"] for e in not_due]}}) == 4


def test_the_schedules_request_archives_the_newest_due_day_in_one_process(
    harness: Harness, home: Path
) -> None:
    from audit_archive.definitions import audit_archive_schedule, defs

    newest = due_day(0)
    harness.seed({newest: 7, due_day(1): 3})
    [request] = audit_archive_schedule.evaluate_tick(
        build_schedule_context(
            scheduled_execution_time=dt.datetime.now(dt.UTC),
            repository_def=defs.get_repository_def(),
        )
    ).run_requests
    assert audit_archive_schedule.cron_schedule == "0 3 * * *"
    assert request.partition_key == layout.format_day(newest) == request.run_key

    done = _execute_request(harness, home, request)

    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["day"] for r in harness.records()] == [str(newest)]
    instance, run_id = _only_run(home)
    with instance:
        assert_one_process(home, run_id, instance)


def test_the_catchup_sensors_requests_run_in_one_process(harness: Harness, home: Path) -> None:
    from audit_archive.definitions import audit_archive_catchup_sensor, defs
    from audit_archive.defs.resources import resources

    with (
        DagsterInstance.from_config(str(home)) as instance,
        build_sensor_context(instance=instance, definitions=defs, resources=resources()) as context,
    ):
        requests = audit_archive_catchup_sensor.evaluate_tick(context).run_requests
    # Oldest first: ARCHIVE_START_DATE's day, empty here (an empty part 1).
    request = requests[0]
    day = request.partition_key

    done = _execute_request(harness, home, request)

    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["day"] for r in harness.records()] == [str(day)]
    instance, run_id = _only_run(home)
    with instance:
        assert_one_process(home, run_id, instance)


def _execute_request(harness: Harness, home: Path, request) -> object:
    """What the daemon does with a run request: a run of the request's job with its
    tags and the partition, executed by that job's own executor."""
    tags = {**request.tags, "dagster/partition": request.partition_key}
    return dagster_cli(
        ["job", "execute", *LOCATION, "-j", "audit_archive_job", "--tags", json.dumps(tags)],
        _env(harness, home),
    )


def test_every_job_and_the_asset_pages_job_use_the_in_process_executor() -> None:
    """The definitions' side of what the runs above show: no job falls back to Dagster's
    multiprocess default."""
    from audit_archive.definitions import defs

    jobs = [defs.resolve_job_def(j.name) for j in defs.resolve_all_job_defs()]
    assert {j.name for j in jobs} >= {"__ASSET_JOB", "audit_archive_job", "audit_restore_job"}
    assert {j.name: j.executor_def.name for j in jobs} == {j.name: "in_process" for j in jobs}


def _asset():
    from dagster import AssetKey

    return AssetKey("cold_archive")

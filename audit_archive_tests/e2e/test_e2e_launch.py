"""Issue 21 through ``./dev ui`` (dagster dev, the daemon, the repo's dagster.yaml), with
the GraphQL calls the UI's buttons make: the asset page's Materialize and the job's
Launchpad run the six ops in one process and leave the same materialization; a day that
is not due is refused before any op; "Re-execute from failure" after a later op failed
is refused before any op, naming the click that works, and that click converges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from audit_archive.format import layout
from audit_archive_tests.support.benchmarks import run_benchmark
from audit_archive_tests.support.webserver import (
    JOB,
    LOCATION,
    REPOSITORY,
    Ui,
    executor_of,
    kill_all,
    launch,
    newest_due,
    run_events,
    start_ui,
    wait_backfill,
    wait_runs,
)

pytestmark = pytest.mark.e2e

DAY_STATE = {"day", "part", "parts", "day_events", "checksums", "manifest_sha256", "jsonl_sha256"}
MATERIALIZATIONS = """query($p: [String!]) { assetNodeOrError(assetKey: {path: ["cold_archive"]}) {
  __typename ... on AssetNode { assetMaterializations(partitions: $p, limit: 1) {
    runId metadataEntries { label } } } } }"""
REEXECUTE = """mutation($p: ReexecutionParams!) { launchPipelineReexecution(reexecutionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    running = start_ui(tmp_path_factory.mktemp("dev-ui-launch") / "home")
    yield running
    if running.process.poll() is None:
        kill_all(running)


def _day(n: int) -> str:
    return layout.format_day(newest_due() - dt.timedelta(days=n))


def _steps_started(ui: Ui, run_id: str) -> list[str]:
    return [
        e["stepKey"] for e in run_events(ui, run_id) if e["__typename"] == "ExecutionStepStartEvent"
    ]


def _labels(ui: Ui, day: str) -> tuple[str, set[str]]:
    node = ui.query(MATERIALIZATIONS, {"p": [day]})["assetNodeOrError"]
    [latest] = node["assetMaterializations"]
    return latest["runId"], {e["label"] for e in latest["metadataEntries"]}


def _failure_text(ui: Ui, run_id: str) -> str:
    """Every message and error the run page shows (a resource's error is the cause of
    Dagster's own)."""
    out = []
    for e in run_events(ui, run_id):
        out.append(e.get("message") or "")
        error = e.get("error") or {}
        out += [error.get("message") or "", *(c["message"] for c in error.get("causes") or [])]
    return "\n".join(out)


def test_materialize_from_the_asset_and_the_launchpad_run_in_one_process_alike(ui: Ui) -> None:
    asset_day, job_day = _day(9), _day(10)
    asset_run = ui.client.submit_job_execution(
        "__ASSET_JOB", asset_selection=[["cold_archive"]], tags={"dagster/partition": asset_day}
    )
    job_run = launch(ui, job_day)

    runs = wait_runs(ui, [asset_run, job_run])

    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], runs
    assert executor_of(ui, asset_run) == "in_process" == executor_of(ui, job_run)
    assert len(_steps_started(ui, asset_run)) == 6
    run_a, labels_a = _labels(ui, asset_day)
    run_j, labels_j = _labels(ui, job_day)
    assert (run_a, run_j) == (asset_run, job_run)
    assert labels_a == labels_j and labels_a >= DAY_STATE

    # A re-run that changes nothing shows the same day state.
    again = ui.client.submit_job_execution(
        "__ASSET_JOB", asset_selection=[["cold_archive"]], tags={"dagster/partition": asset_day}
    )
    assert wait_runs(ui, [again])[0]["status"] == "SUCCESS"
    run_again, labels_again = _labels(ui, asset_day)
    assert run_again == again and labels_again >= DAY_STATE | {"changed", "reason"}


@pytest.mark.parametrize("job", ["audit_archive_job", "__ASSET_JOB"])
def test_a_day_not_due_launched_through_graphql_is_refused_before_any_op(ui: Ui, job: str) -> None:
    hot_day = layout.format_day(newest_due() + dt.timedelta(days=2))
    lo, hi = layout.day_bounds(layout.parse_day(hot_day))
    before = ui.db.auditevents.count_documents({"at": {"$gte": lo, "$lt": hi}})
    assert before, "the demo seeds hot days too"
    extra = {"asset_selection": [["cold_archive"]]} if job == "__ASSET_JOB" else {}
    run_id = ui.client.submit_job_execution(job, tags={"dagster/partition": hot_day}, **extra)

    [run] = wait_runs(ui, [run_id])

    assert run["status"] == "FAILURE"
    assert _steps_started(ui, run_id) == [], "no op ran"
    assert f"{hot_day} is not due yet" in _failure_text(ui, run_id)
    assert ui.db.auditevents.count_documents({"at": {"$gte": lo, "$lt": hi}}) == before
    assert ui.db.archivebatches.count_documents({"day": hot_day}) == 0


def test_reexecute_from_failure_is_refused_and_reexecute_all_converges(ui: Ui) -> None:
    day = _day(7)
    lo, hi = layout.day_bounds(layout.parse_day(day))
    events = ui.db.auditevents.find({"at": {"$gte": lo, "$lt": hi}}, sort=[("seq", 1)])
    original = list(events)
    victim = original[len(original) // 2]
    # to_jsonl_gz fails on an event that does not re-hash (extract_chained succeeded).
    ui.db.auditevents.update_one({"_id": victim["_id"]}, {"$set": {"actor.id": "mallory"}})
    [failed] = wait_runs(ui, [launch(ui, day)])
    assert failed["status"] == "FAILURE"
    ui.db.auditevents.replace_one({"_id": victim["_id"]}, victim)  # the operator fixes it

    def reexecute(strategy: str) -> dict[str, Any]:
        params = {"parentRunId": failed["runId"], "strategy": strategy}
        result = ui.query(REEXECUTE, {"p": params})["launchPipelineReexecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        [run] = wait_runs(ui, [result["run"]["runId"]])
        return run

    from_failure = reexecute("FROM_FAILURE")

    assert from_failure["status"] == "FAILURE"
    assert _steps_started(ui, from_failure["runId"]) == [], "refused before any op"
    text = _failure_text(ui, from_failure["runId"])
    assert "Re-execute all (*)" in text and "nothing was changed" in text, text[-2000:]
    assert ui.db.archivebatches.count_documents({"day": day}) == 0

    all_steps = reexecute("ALL_STEPS")

    assert all_steps["status"] == "SUCCESS"
    [record] = list(ui.db.archivebatches.find({"day": day}))
    assert record["runId"] == all_steps["runId"] and record["eventCount"] == len(original)
    assert ui.db.auditevents.count_documents({"at": {"$gte": lo, "$lt": hi}}) == 0
    statuses = ui.query(
        """query($r: RepositorySelector!, $n: String!) {
             partitionSetOrError(repositorySelector: $r, partitionSetName: $n) { __typename
               ... on PartitionSet { partitionStatusesOrError { __typename
                 ... on PartitionStatuses { results { partitionName runStatus } } } } } }""",
        {
            "r": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            "n": f"{JOB}_partition_set",
        },
    )["partitionSetOrError"]["partitionStatusesOrError"]["results"]
    assert {s["partitionName"]: s["runStatus"] for s in statuses}[day] == "SUCCESS"


@pytest.mark.slow  # the backfill daemon looks for new backfills every 30 s
def test_an_asset_backfill_runs_each_day_in_one_process(ui: Ui) -> None:
    """The asset page's "Launch backfill": runs of Dagster's asset job, one per day."""
    days = [_day(n) for n in (5, 4)]
    result = ui.query(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
             __typename ... on LaunchBackfillSuccess { backfillId }
             ... on PythonError { message } } }""",
        {"p": {"assetSelection": [{"path": ["cold_archive"]}], "partitionNames": days}},
    )["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    runs = wait_backfill(ui, result["backfillId"], len(days), timeout=180)
    assert {r["status"] for r in runs} == {"SUCCESS"}
    assert {executor_of(ui, r["runId"]) for r in runs} == {"in_process"}
    assert {r["day"] for r in ui.db.archivebatches.find({"day": {"$in": days}})} == set(days)


def test_the_asset_vs_job_benchmark_runs_and_reports_every_field() -> None:
    """benchmarks/bench_asset_vs_job.py at its smallest, so it never rots (figures: docs)."""
    report = run_benchmark("bench_asset_vs_job.py", "--days", "1", "--events-per-day", "20")
    assert report["asset_step_processes_median"] == 1 == report["job_step_processes_median"]
    for metric in ("per_day_seconds", "run_seconds"):
        assert report[f"ratio_asset_to_job_{metric}"] > 0

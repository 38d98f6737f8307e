"""The preloaded run launcher (dagster.yaml's run_launcher, issue 24: catch-up) runs each
run in a process of its own, forked from one that has Dagster and the run's libraries
imported: the run succeeds or fails as under Dagster's default launcher, with its
events in the run's log, its worker's pid on the run, and the UI's Terminate cancels it.
The e2e tests (./dev ui, dagster dev) launch every run they start through it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, instance_for_test, reconstructable
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.base import WorkerStatus

from audit_archive.defs.launcher import WORKER_PID_TAG, PreloadedRunLauncher
from audit_archive_tests.support import launcher_jobs

# The run launcher the project ships for dagster dev / ./dev ui.
LAUNCHER = yaml.safe_load((Path(__file__).parents[2] / "dagster.yaml").read_text())["run_launcher"]


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    monkeypatch.setenv("RUN_WORKER_PID_FILE", str(tmp_path / "pid"))
    with instance_for_test(overrides={"run_launcher": LAUNCHER}) as inst:
        yield inst


def launch(instance: DagsterInstance, job) -> str:
    recon = reconstructable(job)
    run = instance.create_run_for_job(
        job_def=job, job_code_origin=recon.get_python_origin(), status=DagsterRunStatus.STARTING
    )
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return run.run_id


def wait_finished(instance: DagsterInstance, run_id: str, timeout: float = 60) -> DagsterRunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run.status
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def messages(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.message or "" for e in instance.all_logs(run_id)]


def test_the_instance_builds_the_launcher_from_its_yaml(instance: DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, PreloadedRunLauncher)


def test_a_run_runs_in_a_worker_of_its_own_and_succeeds(
    instance: DagsterInstance, tmp_path: Path
) -> None:
    run_id = launch(instance, launcher_jobs.where_job)

    assert wait_finished(instance, run_id) == DagsterRunStatus.SUCCESS
    worker = int((tmp_path / "pid").read_text())
    assert worker != os.getpid()
    assert instance.get_run_by_id(run_id).tags[WORKER_PID_TAG] == str(worker)
    log = messages(instance, run_id)
    assert f"Started process for run (pid: {worker})." in log  # Dagster's run worker
    assert f"ran in {worker}" in log


def test_a_failing_run_fails_with_its_error_in_the_log(instance: DagsterInstance) -> None:
    run_id = launch(instance, launcher_jobs.failing_job)

    assert wait_finished(instance, run_id) == DagsterRunStatus.FAILURE
    assert any(
        "this op fails on purpose" in str(e.dagster_event)
        for e in instance.all_logs(run_id)
        if e.dagster_event
    )


def test_terminate_cancels_a_running_run(instance: DagsterInstance) -> None:
    run_id = launch(instance, launcher_jobs.long_job)
    deadline = time.monotonic() + 60
    while "wait_long" not in " ".join(messages(instance, run_id)):  # its op has started
        assert time.monotonic() < deadline, messages(instance, run_id)
        time.sleep(0.1)

    assert instance.run_launcher.terminate(run_id)

    assert wait_finished(instance, run_id) == DagsterRunStatus.CANCELED
    assert not instance.run_launcher.terminate(run_id), "a finished run is not terminated again"


def test_terminate_never_interrupts_a_process_that_is_not_a_forked_worker(
    instance: DagsterInstance,
) -> None:
    """A worker that died without ending its run leaves its pid on the run: Terminate must
    not interrupt whatever process has that pid now (here: the test itself)."""
    recon = reconstructable(launcher_jobs.long_job)
    run = instance.create_run_for_job(
        job_def=launcher_jobs.long_job,
        job_code_origin=recon.get_python_origin(),
        status=DagsterRunStatus.STARTED,
        tags={WORKER_PID_TAG: str(os.getpid())},
    )
    assert not instance.run_launcher.terminate(run.run_id)  # and this test was not interrupted
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELING


def test_run_monitoring_finds_a_killed_worker_gone(instance: DagsterInstance) -> None:
    """Run monitoring (dagster.yaml) asks the launcher whether a started run's worker is
    still there: running while it runs; once it is killed (SIGKILL: no event written, the
    run still says STARTED), gone, and the monitoring daemon fails the run."""
    run_id = launch(instance, launcher_jobs.long_job)
    deadline = time.monotonic() + 60
    while "wait_long" not in " ".join(messages(instance, run_id)):
        assert time.monotonic() < deadline, messages(instance, run_id)
        time.sleep(0.1)
    run = instance.get_run_by_id(run_id)
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

    os.kill(int(run.tags[WORKER_PID_TAG]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while instance.run_launcher.check_run_worker_health(run).status != WorkerStatus.FAILED:
        assert time.monotonic() < deadline, "the killed worker still looks alive"
        time.sleep(0.1)
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED

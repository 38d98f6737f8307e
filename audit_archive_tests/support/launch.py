"""How a real run was executed, read back from the run's own records (not from the
definitions): which executor ran it and in how many processes its steps ran; and
Dagster's own CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetRecordsFilter, DagsterEventType, DagsterInstance

REPO = Path(__file__).resolve().parents[2]
# Dagster's own `dagster` command, from the environment the tests run in.
DAGSTER = str(Path(sys.executable).with_name("dagster"))
IN_PROCESS = "Executing steps in process"
MULTIPROCESS = "Executing steps using multiprocess executor"


@dataclass(frozen=True)
class Execution:
    executor: str  # "in_process", "multiprocess" or "unknown"
    step_pids: frozenset[int]  # the processes the steps started in
    steps_started: tuple[str, ...]


def execution_of(instance: DagsterInstance, run_id: str) -> Execution:
    """The executor's own engine event names it; every STEP_START carries its pid."""
    logs = instance.all_logs(run_id)
    messages = [e.user_message or "" for e in logs]
    executor = "unknown"
    if any(m.startswith(IN_PROCESS) for m in messages):
        executor = "in_process"
    elif any(m.startswith(MULTIPROCESS) for m in messages):
        executor = "multiprocess"
    starts = [
        e.dagster_event
        for e in logs
        if e.dagster_event is not None and e.dagster_event.event_type == DagsterEventType.STEP_START
    ]
    return Execution(
        executor,
        frozenset(e.pid for e in starts if e.pid is not None),
        tuple(e.step_key or "" for e in starts),
    )


def latest_materialization_metadata(instance: DagsterInstance, asset_key, partition: str):
    """The newest materialization of one partition, as {key: value}."""
    [record] = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]),
        limit=1,
    ).records
    mat = record.asset_materialization
    return {k: v.value for k, v in mat.metadata.items()}


def dagster_cli(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def archive_job():
    """audit_archive_job as Dagster reconstructs it in a run worker (``reconstructable``
    needs a module-level function): execute_job then runs it with its own executor."""
    from audit_archive.definitions import defs

    return defs.resolve_job_def("audit_archive_job")

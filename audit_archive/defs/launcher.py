"""A run launcher for one machine: each run worker is forked from a process that has
already imported Dagster and the libraries a run needs, instead of starting a new
interpreter per run.

Why: on a small machine catching up a backlog of small days, most of a day's CPU was
the run worker's start (issue 24: Dagster's empty run worker costs ~1.8 CPU-seconds,
the interpreter and its imports, against ~0.5 for the archive's own work). A run worker
started here runs exactly what the container launchers run (``dagster api execute_run``
with the run's arguments: the same events, the same failure handling, the run's own
process), minus the imports, which multiprocessing's ``forkserver`` did once.

What is preloaded is libraries only: the code location itself (``audit_archive``) is
imported by each run worker, so a reloaded code location is what the next run runs.
Terminating a run (the UI's Terminate) interrupts its worker as Dagster's default
launcher does (SIGINT: the run is marked canceled). It is for one machine (``dagster
dev``, ``./dev ui``, a single-host deployment): workers are children of the daemon's
forkserver; Kubernetes deployments keep their K8sRunLauncher (deploy/helm).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import Field
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from audit_archive.stores.leasestore import pid_alive

# The run's tag naming its worker's process (terminate() may run in another process:
# the webserver's, where the UI's Terminate is clicked).
WORKER_PID_TAG = "audit_archive/run_worker_pid"
# What every run worker imports before it reaches the code location: Dagster with its
# CLI and storages, and the clients the archive's resources build. A module that does
# not import is skipped by the forkserver (and then imported by each worker, as before).
PRELOAD = (
    "dagster",
    "dagster._cli.api",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster_aws.s3",
    "boto3",
    "botocore.client",
    "pymongo",
    "pydantic_settings",
    "orjson",
    "click",
)


def run_worker(execute_run_args_json: str) -> None:
    """The run worker: ``dagster api execute_run`` on the run's arguments, in this
    (forked) process. Exits with the command's status."""
    from dagster._cli.api import api_cli

    api_cli.main(["execute_run", execute_run_args_json], prog_name="dagster api")


class PreloadedRunLauncher(RunLauncher, ConfigurableClass):
    """Runs each run in a process of its own, forked from one that has the libraries
    imported (see the module's docstring)."""

    def __init__(
        self,
        preload_modules: Sequence[str] | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self._preload = list(PRELOAD if preload_modules is None else preload_modules)
        self._context: Any = None
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "preload_modules": Field(
                [str],
                is_required=False,
                description="Modules the forkserver imports once for every run worker "
                "(default: Dagster, its CLI and SQLite storages, dagster_aws, boto3, "
                "pymongo, pydantic-settings).",
            )
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> PreloadedRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def _multiprocessing(self) -> Any:
        with self._lock:
            if self._context is None:
                if "forkserver" in multiprocessing.get_all_start_methods():
                    context = multiprocessing.get_context("forkserver")
                    context.set_forkserver_preload(self._preload)
                else:  # Windows: a new interpreter per worker, as Dagster's launcher
                    context = multiprocessing.get_context("spawn")
                self._context = context
            return self._context

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if run.job_code_origin is None:
            raise ValueError(f"run {run.run_id} has no code origin: it cannot be launched")
        args = ExecuteRunArgs(
            job_origin=run.job_code_origin,
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        worker = self._multiprocessing().Process(
            target=run_worker, args=(serialize_value(args),), name=f"dagster-run-{run.run_id}"
        )
        worker.start()
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(worker.pid)})
        self._instance.report_engine_event(
            f"Forked a run worker from the preloaded process (pid {worker.pid}).",
            run,
            cls=self.__class__,
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        pid = run.tags.get(WORKER_PID_TAG)
        self._instance.report_run_canceling(run)
        if pid is None or not is_forked_worker(int(pid)):
            return False
        try:
            os.kill(int(pid), signal.SIGINT)  # Dagster's run worker: interrupted, canceled
        except ProcessLookupError:
            return False
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: Any) -> CheckRunHealthResult:
        """For run monitoring (dagster.yaml): a started run whose worker is gone (killed,
        out of memory) is failed by the monitoring daemon instead of holding its day's
        queue slot for ever."""
        pid = run.tags.get(WORKER_PID_TAG)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has no worker pid tag")
        if is_forked_worker(int(pid)):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=pid)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"the run worker (pid {pid}) is gone", run_worker_id=pid
        )


def is_forked_worker(pid: int) -> bool:
    """Whether ``pid`` is a live run worker: where /proc says, a process forked by a
    forkserver (an ended one, a zombie, has an empty command line); elsewhere any live
    process. A worker that died without ending its run may have left its pid to an
    unrelated process, which must not be interrupted."""
    try:
        return b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists() and pid_alive(pid)

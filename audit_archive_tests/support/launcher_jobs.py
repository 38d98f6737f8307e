"""Jobs for the run launcher's tests: module-level, so a run worker started in another
process reconstructs them from the run's code origin."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dagster import in_process_executor, job, op


@op
def say_where(context) -> None:  # no hint: Dagster checks it at run time
    """Writes the worker's pid where the test said (RUN_WORKER_PID_FILE)."""
    Path(os.environ["RUN_WORKER_PID_FILE"]).write_text(str(os.getpid()))
    context.log.info(f"ran in {os.getpid()}")


@op
def wait_long() -> None:
    time.sleep(120)


@op
def fail_now() -> None:
    raise RuntimeError("this op fails on purpose")


@job(executor_def=in_process_executor)
def where_job() -> None:
    say_where()


@job(executor_def=in_process_executor)
def long_job() -> None:
    wait_long()


@job(executor_def=in_process_executor)
def failing_job() -> None:
    fail_now()

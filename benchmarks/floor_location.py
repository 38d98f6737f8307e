"""A code location with nothing of the archive in it, for bench_run_worker.py's floor:
what Dagster itself costs per run worker (a new process, Dagster imported, the instance,
the run's events), measured on the same machine as the archive's run.

- ``empty_job``: one op that does nothing (the floor of any Dagster run);
- ``six_steps_job``: six ops that hand a small value on, one after another, with the
  archive's executor (in process) and Dagster's default IO manager: the same shape as
  ``audit_archive_job`` without its work, imports or resources.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor, job, op


@op
def nothing() -> None:
    """Does nothing: the run's cost is Dagster's alone."""


@op
def first() -> int:
    return 1


@op
def step(value: int) -> int:
    return value + 1


@job(executor_def=in_process_executor)
def empty_job() -> None:
    nothing()


@job(executor_def=in_process_executor)
def six_steps_job() -> None:
    value = first()
    for _ in range(5):
        value = step(value)


defs = Definitions(jobs=[empty_job, six_steps_job])

"""Re-executing a failed run (issue 21): a run that would start after extract_chained
(Re-execute from failure after a later op failed, or from a chosen step) would carry the
parent run's staging files and lease owner, so it is refused when it starts, before any
op, naming the click that works; a re-execution that includes extract_chained, and
"Re-execute all", take the lease themselves and converge. Through Dagster's public
re-execution API (what the UI's buttons call); the GraphQL mutation itself is in
test_e2e_launch.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import (
    DagsterInstance,
    ReexecutionOptions,
    execute_job,
    instance_for_test,
    reconstructable,
)

from audit_archive.archive import steps
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.launch import archive_job, execution_of
from audit_archive_tests.support.reliability import failure_messages, op_name, step_events


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _fail_once(monkeypatch: pytest.MonkeyPatch, module, name: str) -> None:
    real = getattr(module, name)
    calls = []

    def failing(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise ConnectionError(f"{name}: the connection was reset")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)


def _launch(instance: DagsterInstance, day, **kwargs):
    return execute_job(
        reconstructable(archive_job),
        instance=instance,
        tags={"dagster/partition": str(day)},
        **kwargs,
    )


@pytest.mark.parametrize("failing_step", ["upload_and_confirm", "purge"])
def test_reexecute_from_failure_after_extract_is_refused_and_reexecute_all_converges(
    harness: Harness, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, failing_step
) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 30})
    _fail_once(monkeypatch, steps, failing_step)
    first = _launch(instance, day)
    assert not first.success
    before = (harness.records(), harness.object_keys(), harness.hot_seqs())

    from_failure = _launch(
        instance, day, reexecution_options=ReexecutionOptions.from_failure(first.run_id, instance)
    )

    assert not from_failure.success
    assert not step_events(from_failure, "STEP_START"), "refused before any op"
    message = failure_messages(from_failure)
    assert "refused before any op ran; nothing was changed" in message
    assert "All steps in root run" in message and "Re-execute all (*)" in message
    assert first.run_id in message
    assert (harness.records(), harness.object_keys(), harness.hot_seqs()) == before

    again = _launch(instance, day, reexecution_options=ReexecutionOptions(first.run_id))

    assert again.success, failure_messages(again)
    assert set(step_events(again, "STEP_START")) >= {"extract_chained"}
    [record] = harness.records(day)
    assert record["eventCount"] == len(seeded)
    assert not harness.hot_seqs() & {e["seq"] for e in seeded}
    assert execution_of(instance, again.run_id).executor == "in_process"
    harness.assert_invariant()


def test_reexecute_from_failure_of_extract_chained_takes_the_lease_and_converges(
    harness: Harness, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 20})
    _fail_once(monkeypatch, steps, "extract")
    first = _launch(instance, day)
    assert not first.success and {op_name(k) for k in first.get_failed_step_keys()} == {
        "extract_chained"
    }

    again = _launch(
        instance, day, reexecution_options=ReexecutionOptions.from_failure(first.run_id, instance)
    )

    assert again.success, failure_messages(again)
    [record] = harness.records(day)
    assert record["runId"] == again.run_id, "the new run archived the day under its own lease"
    assert record["eventCount"] == len(seeded)
    harness.assert_invariant()


def test_a_chosen_step_after_extract_is_refused_even_after_a_successful_run(
    harness: Harness, instance: DagsterInstance
) -> None:
    """ "From selected" on a finished run: the parent's staging files are gone."""
    day = due_day(3)
    harness.seed({day: 10})
    first = _launch(instance, day)
    assert first.success
    records = harness.records()

    chosen = _launch(
        instance,
        day,
        reexecution_options=ReexecutionOptions(
            first.run_id, step_selection=["cold_archive.sign_manifest*"]
        ),
    )

    assert not chosen.success
    assert not step_events(chosen, "STEP_START")
    assert "sign_manifest" in failure_messages(chosen)
    assert harness.records() == records

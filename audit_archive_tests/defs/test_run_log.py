"""What a run writes to its event log under the project's instance settings (dagster.yaml,
deploy/dagster.yaml and the Helm values share them): Dagster's events and the archive's
own messages, without Dagster's DEBUG messages (the file IO manager's "Writing file at"
and "Loading file from", 14 a run, each an event-log write that says nothing an operator
acts on: issue 24's per-run cost)."""

from __future__ import annotations

import logging

import yaml
from dagster import execute_job, instance_for_test, reconstructable

from audit_archive_tests.support.deploy_files import REPO
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.launch import archive_job

IO_MANAGER_DEBUG = ("Writing file at", "Loading file from")


def _run_log(overrides: dict | None, day) -> list:
    with instance_for_test(overrides=overrides) as instance:
        result = execute_job(
            reconstructable(archive_job), instance=instance, tags={"dagster/partition": str(day)}
        )
        assert result.success
        return list(instance.all_logs(result.run_id))


def test_a_run_logs_info_and_above_under_the_projects_instance_settings(
    harness: Harness,
) -> None:
    project = yaml.safe_load((REPO / "dagster.yaml").read_text())
    day, other = due_day(2), due_day(3)
    harness.seed({day: 20, other: 20})

    logged = _run_log({"python_logs": project["python_logs"]}, day)

    # Dagster's events are stored whatever the level (most at DEBUG); messages are not.
    messages = [e for e in logged if e.dagster_event is None]
    assert messages and all(e.level >= logging.INFO for e in messages), "no DEBUG message"
    texts = [e.user_message for e in messages]
    assert not [m for m in texts if m.startswith(IO_MANAGER_DEBUG)]
    assert any(m.startswith("summary:") for m in texts), "the archive's own messages stay"
    kinds = {entry.dagster_event.event_type_value for entry in logged if entry.dagster_event}
    assert {"STEP_SUCCESS", "ASSET_MATERIALIZATION", "PIPELINE_SUCCESS"} <= kinds

    # Dagster's default keeps them: the setting is what leaves them out.
    default = _run_log(None, other)
    assert len([e for e in default if e.user_message.startswith(IO_MANAGER_DEBUG)]) >= 12
    assert len(default) > len(logged)

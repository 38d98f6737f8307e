"""What each op of a day's run hands on: the day's part reference (the day as a date, the
part, the run's lease, the staging directory) plus only what that step adds, never an
earlier step's result inside it, and small: Dagster's default IO manager pickles each."""

from __future__ import annotations

import dataclasses
import pickle

from audit_archive.archive import steps
from audit_archive.defs.names import STEPS
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages

RETURNS = {
    "extract_chained": steps.Extracted,
    "to_jsonl_gz": steps.Encoded,
    "sign_manifest": steps.Signed,
    "upload_and_confirm": steps.Uploaded,
    "record_batch": steps.Recorded,
    "purge_hot": steps.Purged,
}
STEP_RESULTS = tuple(RETURNS.values())


def test_every_op_hands_on_the_days_part_and_only_what_its_step_adds(harness: Harness) -> None:
    day = due_day(2)
    harness.seed({day: 40})

    result = harness.run(day)

    assert result.success, failure_messages(result)
    assert set(RETURNS) == set(STEPS), "every op of the run is covered"
    outputs = {op: result.output_for_node(f"cold_archive.{op}") for op in STEPS}
    for op, output in outputs.items():
        assert type(output) is RETURNS[op], op
        nested = [
            f.name
            for f in dataclasses.fields(output)
            if isinstance(getattr(output, f.name), STEP_RESULTS)
        ]
        assert not nested, f"{op}'s result holds an earlier result in {nested}"
        assert len(pickle.dumps(output)) < 8192, f"{op}'s result is small"
    [ref] = {output.ref for output in outputs.values()}
    assert (ref.day, ref.part, ref.owner) == (day, 1, result.run_id)
    assert ref.lease_token, "the lease's fencing token travels with the part"
    assert outputs["record_batch"].record["eventCount"] == 40
    assert outputs["purge_hot"].deleted == 40

"""MongoDB faults on every command the job sends, injected with ``configureFailPoint``.

The failpoint is armed (for the archive's own client only: ``appName`` audit-archive)
right before the step under test sends its command, so each case hits exactly the
command it names: the extraction's find and getMore, the lease claim, the batch record,
and the purge's delete batches. Retryable errors (ShutdownInProgress, a dropped
connection) are retried by pymongo and the run succeeds; the others fail the run
cleanly, nothing that is not safely archived is deleted, and a re-run converges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from audit_archive.stores.batches import BatchStore
from audit_archive.stores.events import EventStore
from audit_archive.stores.leasestore import LeaseStore
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages

APP = "audit-archive"  # clients.mongo_client's appname
RETRYABLE = {"errorCode": 91}  # ShutdownInProgress: retryable reads and writes
DROP = {"closeConnection": True}
FATAL = {"errorCode": 2}  # BadValue: not retryable


class FailPoints:
    """Arms ``failCommand`` on the test server for the archive's client only."""

    def __init__(self, client: MongoClient) -> None:
        self.client = client
        self.armed: list[tuple[str, ...]] = []

    def arm(self, commands: list[str], data: dict[str, Any]) -> None:
        self.client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": 1},
            data={"failCommands": commands, "appName": APP, **data},
        )
        self.armed.append(tuple(commands))

    def off(self) -> None:
        self.client.admin.command("configureFailPoint", "failCommand", mode="off")

    def before(
        self,
        patch: pytest.MonkeyPatch,
        method: str,
        commands: list[str],
        data: dict[str, Any],
        at_call: int = 1,
        then: Callable[[Any], Any] | None = None,
    ) -> None:
        """Arm the failpoint (once) right before the ``at_call``-th call of ``method`` of
        the hot store that has it (events, batch records or leases)."""
        store = next(s for s in (EventStore, BatchStore, LeaseStore) if method in vars(s))
        original = getattr(store, method)
        calls = {"n": 0}

        def wrapped(store: Any, *args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == at_call:
                self.arm(commands, data)
            result = original(store, *args, **kwargs)
            return then(result) if then else result

        patch.setattr(store, method, wrapped)


@pytest.fixture
def failpoints(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[FailPoints]:
    # After a "node is shutting down" error pymongo retries once it has re-checked the
    # server: every 0.5 s here rather than the default 10 s, to keep the suite quick.
    uri = harness.env["MONGODB_URI"] + "&heartbeatFrequencyMS=500"
    harness.env["MONGODB_URI"] = uri
    monkeypatch.setenv("MONGODB_URI", uri)
    fp = FailPoints(harness.client)
    yield fp
    fp.off()


def small_batches(cursor: Any) -> Any:
    return cursor.batch_size(7)  # several getMores for a small day


SLOW = pytest.mark.slow  # the same command with the other kind of retryable error
CASES = [
    # (id, hot store method the fault precedes, at its n-th call, commands, data, succeeds)
    ("extract-find-retryable", "iter_day_raw", 1, ["find"], RETRYABLE, True, ()),
    ("extract-find-dropped", "iter_day_raw", 1, ["find"], DROP, True, SLOW),
    ("extract-getmore-retryable", "iter_day_raw", 1, ["getMore"], RETRYABLE, False, SLOW),
    ("extract-getmore-dropped", "iter_day_raw", 1, ["getMore"], DROP, False, ()),
    ("claim-insert-retryable", "acquire_lease", 1, ["insert"], RETRYABLE, True, SLOW),
    ("claim-find-fatal", "acquire_lease", 1, ["find"], FATAL, False, ()),
    ("lease-renew-fatal", "renew_lease", 3, ["update"], FATAL, False, ()),
    ("record-insert-dropped", "insert_record", 1, ["insert"], DROP, True, ()),
    ("record-insert-fatal", "insert_record", 1, ["insert"], FATAL, False, ()),
    ("purge-delete-dropped", "delete_seq_run", 1, ["delete"], DROP, True, SLOW),
    ("purge-delete-retryable", "delete_seq_run", 2, ["delete"], RETRYABLE, True, ()),
    ("purge-third-batch-fatal", "delete_seq_run", 3, ["delete"], FATAL, False, ()),
]


@pytest.mark.parametrize(
    "method, at_call, commands, data, succeeds",
    [pytest.param(*c[1:6], id=c[0], marks=c[6]) for c in CASES],
)
def test_a_mongo_fault_is_retried_or_fails_cleanly_and_a_rerun_converges(
    harness: Harness,
    failpoints: FailPoints,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    at_call: int,
    commands: list[str],
    data: dict[str, Any],
    succeeds: bool,
) -> None:
    monkeypatch.setenv("AUDIT_PURGE_BATCH_SIZE", "6")
    day = due_day(2)
    seeded = harness.seed({day: 25, due_day(-3): 3}, gap_rate=0)  # and a hot day
    then = small_batches if method == "iter_day_raw" else None
    with pytest.MonkeyPatch.context() as patch:
        failpoints.before(patch, method, commands, data, at_call, then=then)
        result = harness.run(day)
    failpoints.off()

    assert failpoints.armed, "the fault was injected"
    assert result.success is succeeds, failure_messages(result)
    if not succeeds:
        message = failure_messages(result)
        assert "failed" in message and "mongodb://" not in message, message
        if not harness.records(day):  # failed before the record: not one event may be gone
            hot_ids = {d["_id"] for d in harness.events.find({}, {"_id": 1})}
            assert hot_ids == {e["_id"] for e in seeded}
        again = harness.run(day)
        assert again.success, failure_messages(again)
    assert [r["part"] for r in harness.records(day)] == [1], "one part, however it got there"
    harness.assert_invariant()


def test_a_purge_that_fails_midway_is_finished_by_the_next_run_with_exact_ids(
    harness: Harness, failpoints: FailPoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without transactions (or a count that does not match) the purge deletes exact
    _ids in bulk; a fatal error on the second bulk leaves a recorded part half purged,
    which the next run finishes from the checksum-verified object."""
    monkeypatch.setenv("AUDIT_PURGE_BATCH_SIZE", "10")
    day = due_day(2)
    harness.seed({day: 35}, gap_rate=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EventStore, "delete_seq_run", lambda *a, **k: False)
        failpoints.before(patch, "delete_ids", ["delete"], FATAL, at_call=2)
        result = harness.run(day)
    failpoints.off()
    assert not result.success
    left = harness.events.count_documents({})
    assert 0 < left < 35, "the purge stopped part-way"
    assert [r["part"] for r in harness.records(day)] == [1]
    again = harness.run(day)
    assert again.success, failure_messages(again)
    assert harness.events.count_documents({}) == 0
    assert [r["part"] for r in harness.records(day)] == [1]
    harness.assert_invariant()

"""The signed log of manifests (SPEC section 7), end to end on the real servers:
appending, catching up, concurrency and crashes. Readers are in test_log_readers.py."""

from __future__ import annotations

import threading

import pytest

from audit_archive.archive import signed_log
from audit_archive.format import layout
from audit_archive.format.logentry import latest_checkpoint_key
from audit_archive.stores.clients import open_stores
from audit_archive_tests.support.crash_runner import crash
from audit_archive_tests.support.harness import LOG_KEY, Harness, after_due, due_day
from audit_archive_tests.support.reliability import failure_messages


def log_on(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_LOG_SIGNING_KEY", LOG_KEY)
    harness.env["AUDIT_LOG_SIGNING_KEY"] = LOG_KEY


def test_each_recorded_part_is_logged_before_its_events_leave_hot(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_on(harness, monkeypatch)
    days = [due_day(3), due_day(2), due_day(1)]
    harness.seed({d: 20 for d in days})
    for d in days:
        result = harness.run(d)
        assert result.success, failure_messages(result)
        materialization = next(
            e.event_specific_data.materialization
            for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
        )
        meta = {k: v.value for k, v in materialization.metadata.items()}
        assert meta["log_size"] == len(harness.records())
        assert len(meta["log_root"]) == 64 and meta["log_origin"] == "test.example/audit-archive"
        seed_b64 = LOG_KEY.rsplit("+", 1)[1]
        assert all(seed_b64 not in str(e) for e in result.all_events), "the log key leaked"
    assert [r["logIndex"] for r in harness.records()] == [0, 1, 2]
    harness.assert_invariant(now=after_due(days[-1]))


def test_switching_the_log_on_logs_every_earlier_part_first_in_day_part_order(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [due_day(4), due_day(3), due_day(2)]
    harness.seed({d: 10 for d in days})
    for d in (days[1], days[0]):  # recorded out of day order, before the log existed
        assert harness.run(d).success
    assert not harness.object_keys(f"{harness.settings.cold_prefix}/log/")
    log_on(harness, monkeypatch)
    assert harness.run(days[2]).success
    by_index = sorted(harness.records(), key=lambda r: r["logIndex"])
    assert [r["day"] for r in by_index] == [layout.format_day(d) for d in days]
    harness.assert_invariant(now=after_due(days[-1]))


def test_a_part_not_yet_logged_is_never_purged(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_on(harness, monkeypatch)
    day = due_day(2)
    harness.seed({day: 15})
    stores = open_stores(harness.settings)
    # The log cannot be published (bucket unwritable for log objects): the run must fail
    # before its purge and leave every event in hot.
    real_put = stores.cold.put_bytes

    def refuse(key, *args, **kwargs):
        raise RuntimeError("simulated S3 outage for the log")

    monkeypatch.setattr(type(stores.cold), "put_bytes", lambda self, *a, **k: refuse(*a, **k))
    result = harness.run(day)
    assert not result.success
    assert harness.events.count_documents({}) == 15, "nothing deleted before the log covers it"
    assert "logIndex" not in harness.records(day)[0]
    monkeypatch.setattr(type(stores.cold), "put_bytes", real_put.__func__)
    result = harness.run(day)  # the re-run logs the recorded part, then purges it
    assert result.success, failure_messages(result)
    assert harness.events.count_documents({}) == 0
    harness.assert_invariant(now=after_due(day))
    stores.close()


def test_concurrent_appends_give_dense_unique_indexes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts recorded by racing runs: several appenders at once, each a different run."""
    days = [due_day(n) for n in range(8, 2, -1)]
    harness.seed({d: 3 for d in days})
    for d in days:  # recorded without the log, so the appenders race over all of them
        assert harness.run(d).success
    log_on(harness, monkeypatch)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    states = []

    def appender(i: int) -> None:
        stores = open_stores(harness.settings)
        try:
            barrier.wait()
            states.append(signed_log.append(stores, f"racer-{i}", wait_seconds=60))
        except BaseException as e:  # collected: asserted below
            errors.append(e)
        finally:
            stores.close()

    threads = [threading.Thread(target=appender, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert {s.size for s in states} == {len(days)}
    assert sum(len(s.appended) for s in states) == len(days), "each part appended once"
    assert sorted(r["logIndex"] for r in harness.records()) == list(range(len(days)))
    harness.assert_invariant(now=after_due(days[-1]))


def test_concurrent_runs_of_different_days_with_the_log_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_on(harness, monkeypatch)
    days = [due_day(5), due_day(4), due_day(3)]
    harness.seed({d: 8 for d in days})
    results = {}

    def run(d) -> None:
        results[d] = harness.run(d)

    threads = [threading.Thread(target=run, args=(d,)) for d in days]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.success for r in results.values()), [failure_messages(r) for r in results.values()]
    harness.assert_invariant(now=after_due(days[-1]))


def test_the_leaves_are_rebuilt_from_the_bucket_when_mongo_lost_them(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_on(harness, monkeypatch)
    days = [due_day(3), due_day(2)]
    harness.seed({d: 5 for d in days})
    assert harness.run(days[0]).success
    harness.db[f"{harness.settings.batches_collection}_log"].drop()
    assert harness.run(days[1]).success
    harness.assert_invariant(now=after_due(days[-1]))


LOG_CRASH_POINTS = [
    "after-record",
    "log-after-leaf",
    "log-after-entry",
    "log-after-numbered-checkpoint",
    "log-after-checkpoint",
    "log-mid-record-index",
    "after-log",
]


# The default set crashes inside the append; -m slow adds the crashes just before it (the
# log untouched) and just after it (the log complete, the purge not begun).
@pytest.mark.parametrize(
    "point",
    [
        pytest.param(p, marks=pytest.mark.slow) if p in ("after-record", "after-log") else p
        for p in LOG_CRASH_POINTS
    ],
)
def test_a_crash_inside_the_log_append_converges_on_rerun(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    log_on(harness, monkeypatch)
    first, day = due_day(3), due_day(2)
    harness.seed({first: 6, day: 12})
    assert harness.run(first).success  # so the crash lands on a log of size 1
    crashed = crash(day, point)
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    assert harness.events.count_documents({"at": {"$lt": layout.day_bounds(day)[1]}}) == 12, (
        "nothing deleted before the log covers the part"
    )
    result = harness.run(day)  # the dead worker's leases are taken over at once
    assert result.success, failure_messages(result)
    assert len(harness.records(day)) == 1
    assert harness.events.count_documents({}) == 0
    assert harness.get(latest_checkpoint_key(harness.settings.cold_prefix))
    harness.assert_invariant(now=after_due(day))

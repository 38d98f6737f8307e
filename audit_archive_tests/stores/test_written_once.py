"""Evidence is written once (SPEC 3 "Written once", issue 20): every object write is
conditional, a store that ignores conditional writes is refused at start-up, and the
lease's fencing token is checked in the same MongoDB transaction as the write it guards.
The stalls these rules exist for are in test_stalls.py."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from audit_archive.errors import ConfigError, LeaseLost
from audit_archive.format.layout import probe_key
from audit_archive.settings import Settings
from audit_archive.stores import conditional
from audit_archive.stores.clients import open_stores
from audit_archive.stores.conditional import WriteConflict
from audit_archive.stores.leasestore import Fence
from audit_archive_tests.support.faultproxy import FaultProxy
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages

ACCEPT = "AUDIT_COLD_ACCEPT_UNCONDITIONAL_WRITES"


def test_an_object_is_written_only_where_none_is_and_replaced_only_by_its_etag(
    harness: Harness,
) -> None:
    stores = open_stores(Settings.from_env())
    try:
        cold = stores.cold
        cold.put_bytes("audit/x", b"first", "text/plain")
        with pytest.raises(WriteConflict):
            cold.put_bytes("audit/x", b"second", "text/plain")
        etag = cold.head("audit/x")["ETag"]
        with pytest.raises(WriteConflict):
            cold.put_bytes("audit/x", b"third", "text/plain", if_match='"0123"')
        cold.put_bytes("audit/x", b"fourth", "text/plain", if_match=etag)
        with pytest.raises(WriteConflict):  # the ETag read before is no longer the object's
            cold.put_bytes("audit/x", b"fifth", "text/plain", if_match=etag)
        assert harness.get("audit/x") == b"fourth"
    finally:
        stores.close()


def test_the_start_up_probe_leaves_one_object_written_once(harness: Harness) -> None:
    """The first run creates the probe object; later probes are refused by the store
    (moto refuses what it must), so it is never rewritten."""
    key = probe_key(harness.settings.cold_prefix)
    stores = open_stores(Settings.from_env())  # the start-up check probes once
    try:
        etag = stores.cold.head(key)["ETag"]
        assert conditional.probe(stores.cold, key) is None  # and again: refused throughout
        assert stores.cold.head(key)["ETag"] == etag
    finally:
        stores.close()
    assert harness.object_keys(with_probe=True) == [key]
    uploads = harness.s3.list_multipart_uploads(Bucket=harness.bucket).get("Uploads") or []
    assert uploads == [], "the probe's refused multipart upload is aborted"


def test_a_store_that_ignores_conditional_writes_is_refused_unless_the_risk_is_accepted(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = due_day()
    harness.seed({day: 5})
    with FaultProxy(harness.s3.meta.endpoint_url, ignore_conditions=True) as proxy:
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", proxy.url)
        with pytest.raises(ConfigError) as refused:
            open_stores(Settings.from_env())
        assert refused.value.variable == ACCEPT
        assert "ignores conditional writes" in str(refused.value)
        run = harness.run(day)
        assert not run.success and ACCEPT in failure_messages(run)
        assert harness.records() == [] and harness.events.count_documents({}) == 5
        monkeypatch.setenv(ACCEPT, "true")
        accepted = harness.run(day)
    assert accepted.success, failure_messages(accepted)
    assert len(harness.records(day)) == 1


def _lease(harness: Harness, owner: str, seconds: int) -> Fence:
    stores = open_stores(Settings.from_env())
    try:
        lease = stores.leases.acquire_lease("2026-01-01", owner, seconds)
        assert lease.owner == owner, lease
        return Fence("2026-01-01", owner, lease.token, 5)
    finally:
        stores.close()


def _record(part: int) -> dict:
    return {"day": "2026-01-01", "part": part, "archivedAt": dt.datetime.now(dt.UTC)}


def test_a_fenced_write_after_a_take_over_is_not_made(harness: Harness) -> None:
    stores = open_stores(Settings.from_env())
    try:
        stale = _lease(harness, "run-a", -1)  # expired at once: the next claim takes over
        fresh = _lease(harness, "run-b", 60)
        assert stale.token != fresh.token
        with pytest.raises(LeaseLost):
            stores.batches.insert_record(_record(1), stale)
        with pytest.raises(LeaseLost):
            stores.events.delete_ids(["nothing"], stale)
        assert not stores.leases.renew_lease("2026-01-01", "run-a", 60, stale.token)
        assert stores.batches.insert_record(_record(1), fresh)
        assert [r["part"] for r in harness.records()] == [1]
    finally:
        stores.close()


def test_a_take_over_racing_a_fenced_write_conflicts_with_it(harness: Harness) -> None:
    """A take-over sent while the fenced transaction is open waits for it (SecantusDB and
    MongoDB alike) and then finds the lease renewed by the fenced write: the record is in
    and the other run does not get the lease. Never both."""
    stores = open_stores(Settings.from_env())
    try:
        fence = _lease(harness, "run-a", -1)  # expired: a take-over would succeed now
        outcome: dict = {}

        def write(session) -> None:
            stores.batches.collection.insert_one(_record(1), session=session)
            taker = threading.Thread(
                target=lambda: outcome.update(
                    lease=stores.leases.acquire_lease("2026-01-01", "run-b", 60)
                )
            )
            taker.start()
            taker.join(1.0)  # blocked on the lease document the transaction holds
            outcome["blocked"] = taker.is_alive()
            outcome["thread"] = taker

        stores.leases.fenced(fence, write)
        outcome["thread"].join(30)
        assert [r["part"] for r in harness.records()] == [1]
        assert outcome["lease"].owner == "run-a", "the take-over saw the renewed lease"
        assert outcome["blocked"], "the take-over waited for the fenced transaction"
    finally:
        stores.close()


class _ColdUploads:
    """The two calls _abort_stale_uploads makes of the cold store, over a list of
    uploads with their dates: moto dates every upload 2010-11-10, so the real server
    cannot show the dates this decision is made on (AWS S3 and MinIO date each upload)."""

    def __init__(self, uploads: list[dict]) -> None:
        self.uploads = uploads

    def incomplete_uploads(self, prefix: str) -> list[dict]:
        return [u for u in self.uploads if u["Key"].startswith(prefix)]

    def abort_upload(self, key: str, upload_id: str) -> None:
        self.uploads = [u for u in self.uploads if u["UploadId"] != upload_id]


def test_a_stalled_upload_step_aborts_only_uploads_begun_before_it_started() -> None:
    """A run that stalls in upload_and_confirm and resumes after another run took its
    lease over lists the day's incomplete uploads: it aborts what a dead attempt left
    (begun before the step started, less the store's clock skew) but never the new
    holder's upload in flight (begun after), which would fail the new holder's run."""
    from types import SimpleNamespace

    from audit_archive.archive import publish

    started = dt.datetime(2026, 1, 3, 3, 0, tzinfo=dt.UTC)
    key = "audit/day=2026-01-02/part-0001.jsonl.gz"
    skew = publish.CLOCK_SKEW
    cold = _ColdUploads(
        [
            {"Key": key, "UploadId": "dead", "Initiated": started - dt.timedelta(hours=1)},
            {"Key": key, "UploadId": "edge", "Initiated": started - skew - dt.timedelta(seconds=1)},
            {"Key": key, "UploadId": "skewed", "Initiated": started - skew / 2},
            {"Key": key, "UploadId": "new", "Initiated": started + dt.timedelta(minutes=10)},
            {"Key": "audit/day=2026-01-03/x", "UploadId": "other day", "Initiated": started},
        ]
    )
    logged: list[str] = []
    stores = SimpleNamespace(cold=cold)
    publish._abort_stale_uploads(
        stores, "audit/day=2026-01-02/", dt.date(2026, 1, 2), logged.append, started
    )
    assert [u["UploadId"] for u in cold.uploads] == ["skewed", "new", "other day"]
    assert logged == [
        "aborted 2 incomplete upload(s) an earlier attempt at 2026-01-02 left",
        "left 2 upload(s) of 2026-01-02 begun after this step started",
    ]

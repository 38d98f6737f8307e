"""verify cannot be fooled by a lease (SPEC 7, Readers): a day's lease makes it
``in-progress`` only while a run could really hold it, and never hides that a recorded
part's objects are gone. Each state is forged in the real MongoDB and S3 servers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from audit_archive.audit.verify.hot_checks import CLOCK_SKEW
from audit_archive.format import layout
from audit_archive.stores.clients import open_stores
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.verify_archive import (
    delete_object,
    expect,
    findings,
    jsonl_key,
    manifest_key,
    statuses,
    verify_json,
)

LEASE_SECONDS = 10  # the harness's AUDIT_LEASE_SECONDS
RUN_MAX_SECONDS = 21600  # AUDIT_RUN_MAX_SECONDS's default: deploy/dagster.yaml's max runtime


def mid_run(archive: Harness, day: dt.date) -> None:
    """The day as a run leaves it for a moment: objects uploaded, no record yet, events
    still in hot (orphan and overdue without a live lease)."""
    assert archive.batches.find_one_and_delete({"day": str(day)}) is not None
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=3)])


def forge_lease(archive: Harness, day: dt.date, **fields: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    doc = {
        "_id": str(day),
        "owner": "run-forged",
        "host": "elsewhere.example",  # not this host: its pid is not checked
        "pid": 1,
        "acquiredAt": now - dt.timedelta(minutes=5),
        "expiresAt": now + dt.timedelta(seconds=LEASE_SECONDS),
    }
    doc.update(fields)
    doc = {k: v for k, v in doc.items() if v is not None}
    archive.db[f"{archive.settings.batches_collection}_leases"].replace_one(
        {"_id": str(day)}, doc, upsert=True
    )


def lease_message(doc: dict[str, Any], day: dt.date) -> str:
    return "\n".join(f["message"] for f in findings(doc, day) if "lease" in f["message"])


def test_a_plausible_lease_makes_the_mid_run_day_in_progress(archive: Harness, capsys) -> None:
    """The baseline the other tests break: a lease as a run holds it (taken minutes ago,
    expiring within the lease time) hides what a run leaves for a moment."""
    day = due_day(6)
    mid_run(archive, day)
    forge_lease(archive, day)
    code, doc = verify_json(capsys)
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    expect(doc, {day: "in-progress"})


def test_a_real_runs_lease_records_when_it_was_taken(archive: Harness) -> None:
    """acquire_lease writes acquiredAt; renewing or re-taking it by the same run keeps it."""
    stores = open_stores(archive.settings)
    try:
        day = str(due_day(6))
        lease = stores.leases.acquire_lease(day, "run-a", LEASE_SECONDS)
        assert lease.acquired_at is not None
        assert stores.leases.renew_lease(day, "run-a", LEASE_SECONDS)
        again = stores.leases.acquire_lease(day, "run-a", LEASE_SECONDS)
        stored = archive.db[f"{archive.settings.batches_collection}_leases"].find_one({"_id": day})
        kept = layout.as_utc(stored["acquiredAt"])  # MongoDB keeps milliseconds
        assert abs(kept - layout.as_utc(lease.acquired_at)) < dt.timedelta(milliseconds=1)
        assert layout.as_utc(again.acquired_at) == kept
    finally:
        stores.close()


def test_a_lease_expiring_beyond_the_lease_time_is_a_finding(archive: Harness, capsys) -> None:
    day = due_day(6)
    mid_run(archive, day)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE_SECONDS) + 2 * CLOCK_SKEW
    forge_lease(archive, day, expiresAt=far)
    code, doc = verify_json(capsys)
    assert code == 1
    assert statuses(doc)[str(day)] == "orphan"
    message = lease_message(doc, day)
    assert "beyond the lease time (AUDIT_LEASE_SECONDS=10)" in message
    assert "inProgress" not in next(d for d in doc["days"] if d["day"] == str(day))
    assert doc["summary"]["inProgress"] == []


def test_a_lease_older_than_any_run_may_take_is_a_finding(archive: Harness, capsys) -> None:
    day = due_day(6)
    mid_run(archive, day)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=RUN_MAX_SECONDS + LEASE_SECONDS)
    forge_lease(archive, day, acquiredAt=old - CLOCK_SKEW - dt.timedelta(minutes=1))
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"
    assert "longer than a run may take (AUDIT_RUN_MAX_SECONDS=21600)" in lease_message(doc, day)

    # Just inside the bound the same lease is a run's.
    forge_lease(archive, day, acquiredAt=old + dt.timedelta(minutes=1))
    code, doc = verify_json(capsys)
    assert code == 0 and statuses(doc)[str(day)] == "in-progress"


def test_the_bound_follows_the_run_max_setting(archive: Harness, capsys, monkeypatch) -> None:
    """A deployment that raises run monitoring's max runtime raises AUDIT_RUN_MAX_SECONDS."""
    day = due_day(6)
    mid_run(archive, day)
    forge_lease(archive, day, acquiredAt=dt.datetime.now(dt.UTC) - dt.timedelta(hours=8))
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"
    monkeypatch.setenv("AUDIT_RUN_MAX_SECONDS", str(12 * 3600))
    code, doc = verify_json(capsys)
    assert code == 0 and statuses(doc)[str(day)] == "in-progress"


def test_a_lease_that_does_not_say_when_it_was_taken_is_a_finding(archive: Harness, capsys) -> None:
    day = due_day(6)
    mid_run(archive, day)
    forge_lease(archive, day, acquiredAt=None)
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"
    assert "acquiredAt" in lease_message(doc, day)


def test_a_live_lease_never_hides_a_recorded_parts_missing_objects(
    archive: Harness, capsys
) -> None:
    """A part is recorded only after its objects are confirmed: a recorded part whose
    objects are gone is lost evidence, whoever holds the day's lease."""
    day = due_day(5)
    forge_lease(archive, day)
    code, doc = verify_json(capsys)
    assert code == 0 and statuses(doc)[str(day)] == "valid", "a lease on a clean day hides nothing"

    delete_object(archive, jsonl_key(day))
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"
    assert any("which is not in the bucket" in f["message"] for f in findings(doc, day))

    delete_object(archive, manifest_key(day))
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"

"""verify under changed settings and during a run: raised retention, a later start date,
a large retention, --to at the end of the calendar, a day a live run holds, and an
auditor holding only previous keys or a key file."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive_tests.support.harness import KEY_A, KEY_B, Harness, due_day
from audit_archive_tests.support.verify_archive import (
    DUE,
    FIRST,
    delete_object,
    expect,
    jsonl_key,
    manifest_key,
    put,
    statuses,
    verify_job_result,
    verify_json,
)

# -- settings changed since archiving ---------------------------------------------------------


def test_raising_the_retention_hides_no_archived_day(archive: Harness, capsys, monkeypatch) -> None:
    """With AUDIT_HOT_RETENTION_DAYS raised by 5, the last five archived days are no
    longer due, but they are archived: verify and audit_verify_job still check them."""
    monkeypatch.setenv("AUDIT_HOT_RETENTION_DAYS", "95")
    day = due_day(2)  # now not due
    delete_object(archive, jsonl_key(day))

    code, doc = verify_json(capsys)
    assert code == 1
    assert statuses(doc)[str(day)] == "orphan"
    assert doc["summary"]["to"] == str(DUE[-1]), "every day that holds a record is covered"
    for extra in (("--deep",), ("--from", str(day), "--to", str(day))):
        code, doc = verify_json(capsys, *extra)
        assert code == 1 and statuses(doc)[str(day)] == "orphan"
    failed = verify_job_result()
    assert not failed.success


def test_moving_the_start_date_later_hides_no_archived_day(
    archive: Harness, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("ARCHIVE_START_DATE", str(due_day(3)))
    day = due_day(5)  # archived before the new start date
    delete_object(archive, manifest_key(day))

    code, doc = verify_json(capsys)
    assert code == 1
    assert doc["summary"]["from"] == str(FIRST)
    assert statuses(doc)[str(day)] == "orphan"
    code, doc = verify_json(capsys, "--from", str(FIRST), "--to", str(due_day(4)))
    assert code == 1 and statuses(doc)[str(day)] == "orphan"
    # Before the first archived day nothing is held: still a usage error, naming --from.
    assert main(["verify", "--from", str(FIRST - dt.timedelta(days=1)), "--to", str(FIRST)]) == 0
    assert main(["verify", "--from", "2000-01-01", "--to", "2000-01-31"]) == 2
    assert "--from 2000-01-01 is before ARCHIVE_START_DATE" in capsys.readouterr().err


def test_the_default_range_with_a_large_retention_names_no_flag(
    harness: Harness, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("AUDIT_HOT_RETENTION_DAYS", "36500")
    monkeypatch.setenv("ARCHIVE_START_DATE", "2024-01-01")
    assert main(["verify"]) == 0
    captured = capsys.readouterr()
    assert "--to" not in captured.err + captured.out and "--from" not in captured.err + captured.out
    assert "nothing to verify: no day is due yet" in captured.out


def test_without_archive_start_date_verify_starts_at_the_archives_first_day(
    archive: Harness, capsys, monkeypatch
) -> None:
    """An auditor does not have the deployment's ARCHIVE_START_DATE (docs/signed-log.md):
    the days before the archive's first batch record are not reported missing, and the
    output says which range was checked and why."""
    monkeypatch.delenv("ARCHIVE_START_DATE")
    first = min(r["day"] for r in archive.records())

    code, doc = verify_json(capsys)

    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert doc["summary"]["from"] == first and doc["days"][0]["day"] == first
    assert doc["summary"]["rangeReason"] == (
        f"from {first}, the archive's first day (its earliest batch record or object): "
        "ARCHIVE_START_DATE is not set"
    )
    assert main(["verify"]) == 0
    assert f"checked {first} to {DUE[-1]}, from {first}, the archive's first day" in (
        capsys.readouterr().out
    )
    # With the deployment's setting earlier than the first record, those days are missing.
    earlier = layout.parse_day(first) - dt.timedelta(days=2)
    monkeypatch.setenv("ARCHIVE_START_DATE", str(earlier))
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(earlier)] == "missing"
    assert doc["summary"]["rangeReason"] == f"from ARCHIVE_START_DATE ({earlier})"


def test_without_archive_start_date_an_empty_archive_has_nothing_to_verify(
    harness: Harness, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("ARCHIVE_START_DATE", raising=False)
    assert main(["verify"]) == 0
    assert "the archive holds no batch record and no object, and ARCHIVE_START_DATE is not set" in (
        capsys.readouterr().out
    )


def test_verify_to_the_last_representable_day_stops_where_nothing_can_be(
    archive: Harness, capsys
) -> None:
    code, doc = verify_json(capsys, "--to", "9999-12-31")
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert doc["summary"]["requestedTo"] == "9999-12-31"
    assert doc["summary"]["to"] == str(dt.datetime.now(dt.UTC).date())
    assert main(["verify", "--from", "9999-12-31"]) == 2
    assert "--from 9999-12-31 is after every day" in capsys.readouterr().err


# -- a run in progress ----------------------------------------------------------------------


def test_a_day_a_live_run_holds_is_in_progress_not_orphan(archive: Harness, capsys) -> None:
    """Mid-run: the objects are uploaded, the record not yet written, the events still
    in hot. While a live run holds the day's lease that is not a finding."""
    from audit_archive.stores.clients import open_stores

    day = due_day(7)
    record = archive.batches.find_one_and_delete({"day": str(day)})
    assert record is not None
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=3)])  # not purged yet

    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"

    stores = open_stores(archive.settings)
    try:
        lease = stores.leases.acquire_lease(str(day), "run-1234", 60)
        assert lease.owner == "run-1234"
        code, doc = verify_json(capsys)
        assert code == 0, [d for d in doc["days"] if d["findings"]]
        expect(doc, {day: "in-progress"})
        assert doc["summary"]["inProgress"] == [str(day)]
        report = next(d for d in doc["days"] if d["day"] == str(day))
        assert "run-1234" in report["inProgress"]
        assert main(["verify"]) == 0
        out = capsys.readouterr().out
        assert f"{day}  in-progress" in out and "in progress: a run (run-1234" in out

        archive_bytes = archive.get(jsonl_key(day))
        forged = bytearray(archive_bytes)  # a real finding is still one
        forged[len(forged) // 2] ^= 1
        put(archive, jsonl_key(day), bytes(forged))
        code, doc = verify_json(capsys)
        assert code == 1 and statuses(doc)[str(day)] == "modified"

        stores.leases.release_lease(str(day), "run-1234")
    finally:
        stores.close()

    # A lease left by a run that died on this host is no run in progress.
    dead = {"owner": "run-dead", "host": socket.gethostname(), "pid": 2**22 + 1}
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    archive.db[f"{archive.settings.batches_collection}_leases"].insert_one(
        {"_id": str(day), **dead, "expiresAt": until}
    )
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "modified"
    put(archive, jsonl_key(day), archive_bytes)
    code, doc = verify_json(capsys)
    assert code == 1 and statuses(doc)[str(day)] == "orphan"


# -- keys ---------------------------------------------------------------------------------------


def test_an_auditor_with_only_previous_keys_or_a_key_file_can_verify(
    archive: Harness, capsys, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUDIT_SIGNING_KEY")
    monkeypatch.setenv("AUDIT_SIGNING_KEYS_PREVIOUS", f"{KEY_B}, {KEY_A}")
    assert main(["verify"]) == 0

    monkeypatch.delenv("AUDIT_SIGNING_KEYS_PREVIOUS")
    key_file = tmp_path / "auditor.key"
    key_file.write_text(f"{KEY_A}\n")
    assert main(["verify", "--key-file", str(key_file)]) == 0
    key_file.write_text(f"{KEY_B}\n")
    capsys.readouterr()
    code, doc = verify_json(capsys, "--key-file", str(key_file))
    assert code == 1 and set(statuses(doc).values()) == {"unverifiable"}

    capsys.readouterr()
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert "AUDIT_SIGNING_KEY" in err and "--key-file" in err
    assert main(["verify", "--key-file", str(tmp_path / "absent.key")]) == 2
    assert "--key-file" in capsys.readouterr().err

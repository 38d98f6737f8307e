"""audit-archive verify / archives and audit_verify_job, against the real servers: the
statuses, tampering one way at a time, key rotation, the commands' surface and Dagster.
The archive and the tampering are support/verify_archive.py's."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import sys

import pytest

from audit_archive.audit.verify import PRECEDENCE, Finding, Status, day_status
from audit_archive.cli import main
from audit_archive.defs.verify_job import build_verify_job, build_verify_schedule
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive.format.manifest import manifest_bytes, sign_manifest
from audit_archive.settings import DefinitionSettings
from audit_archive_tests.support.harness import KEY_A, KEY_B, Harness, due_day
from audit_archive_tests.support.verify_archive import (
    DUE,
    FIRST,
    INTERLEAVED,
    KEY_UNKNOWN,
    NOT_DUE,
    TWO_PARTS,
    clean_statuses,
    expect,
    findings,
    forge_part,
    jsonl_key,
    manifest_key,
    put,
    statuses,
    verify_job_result,
    verify_json,
)

# -- the statuses ---------------------------------------------------------------------


def test_precedence_picks_the_most_serious_finding_and_lists_them_all() -> None:
    assert PRECEDENCE == (
        Status.MODIFIED,
        Status.CHAIN_BREAK,
        Status.UNVERIFIABLE,
        Status.ORPHAN,
        Status.MISSING,
        Status.OVERDUE,
    )
    found = [
        Finding(Status.OVERDUE, "a"),
        Finding(Status.ORPHAN, "b"),
        Finding(Status.MISSING, "c"),
    ]
    assert day_status(found, due=True, parts=1, events=3) is Status.ORPHAN
    assert day_status(found[:1], due=True, parts=1, events=3) is Status.OVERDUE
    assert day_status([], due=True, parts=1, events=3) is Status.VALID
    assert day_status([], due=True, parts=1, events=0) is Status.EMPTY
    assert day_status([], due=False, parts=0, events=0) is Status.NOT_DUE


# -- an untouched archive ---------------------------------------------------------------


def test_an_untouched_archive_verifies_clean_in_both_modes(archive: Harness, capsys) -> None:
    code, doc = verify_json(capsys, "--to", str(NOT_DUE[-1]))
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    assert statuses(doc) == {**clean_statuses(), **{str(d): "not-due" for d in NOT_DUE}}
    s = doc["summary"]
    archived = [r for r in archive.records() if r["eventCount"]]
    hot_chained = [e["seq"] for e in archive.events.find({"hash": {"$type": "string"}})]
    assert s["highestArchivedSeq"] == max(r["endSeq"] for r in archived)
    assert s["oldestHotSeq"] == min(hot_chained)
    assert s["parts"] == len(archive.records()) == 11
    assert s["events"] == sum(r["eventCount"] for r in archived)
    assert s["counts"] == {"valid": 9, "empty": 1, "not-due": 2} and s["findings"] == 0

    code, deep = verify_json(capsys, "--deep")
    assert code == 0, [d for d in deep["days"] if d["findings"]]
    expect(deep, {})
    assert deep["summary"]["bytesRead"] == sum(r["bytesCompressed"] for r in archived)


def test_text_output_has_a_line_per_day_and_the_tier_boundary(archive: Harness, capsys) -> None:
    assert main(["verify"]) == 0
    out = capsys.readouterr().out.splitlines()
    day_lines = [line for line in out if re.match(r"^\d{4}-\d{2}-\d{2}  ", line)]
    assert [line.split()[:2] for line in day_lines] == [
        [str(d), clean_statuses()[str(d)]] for d in DUE
    ]
    assert any(line.startswith("10 days from ") and ": ok" in line for line in out)
    assert any(line.startswith("tier boundary: highestArchivedSeq ") for line in out)


# -- tampering, one way at a time --------------------------------------------------------


@pytest.mark.parametrize("checksum", [False, True], ids=["plain-put", "put-with-new-checksum"])
def test_a_flipped_byte_in_a_jsonl_gz_is_modified(archive: Harness, capsys, checksum) -> None:
    day = due_day(4)
    data = bytearray(archive.get(jsonl_key(day)))
    data[len(data) // 2] ^= 0x01
    put(archive, jsonl_key(day), bytes(data), checksum=checksum)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    assert jsonl_key(day) in findings(doc, day)[0]["message"]

    code, deep = verify_json(capsys, "--deep")
    assert code == 1
    expect(deep, {day: "modified"})
    assert all(jsonl_key(day) in f["message"] for f in findings(deep, day))


def test_an_edited_manifest_field_is_modified(archive: Harness, capsys) -> None:
    day = due_day(5)
    manifest = archive.manifest(day)
    manifest["eventCount"] += 1
    put(archive, manifest_key(day), manifest_bytes(manifest))

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    messages = [f["message"] for f in findings(doc, day)]
    assert any("signature does not verify" in m for m in messages)


def test_a_manifest_resigned_with_an_unknown_key(archive: Harness, capsys) -> None:
    """Re-signed bytes no longer match the batch record: modified, and unverifiable is
    listed too. With the record rewritten to match, it is only unverifiable."""
    day = due_day(1)
    resigned = manifest_bytes(sign_manifest(archive.manifest(day), KEY_UNKNOWN))
    put(archive, manifest_key(day), resigned)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})
    assert {f["kind"] for f in findings(doc, day)} == {"modified", "unverifiable"}

    archive.batches.update_one(
        {"day": str(day), "part": 1},
        {"$set": {"manifestSha256": hashlib.sha256(resigned).hexdigest()}},
    )
    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "unverifiable"})


def test_a_validly_signed_part_replayed_into_another_day_is_modified(
    archive: Harness, capsys
) -> None:
    source, target = due_day(7), due_day(5)
    for key in (jsonl_key, manifest_key):
        put(archive, key(target), archive.get(key(source)))

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {target: "modified"})
    messages = [f["message"] for f in findings(doc, target)]
    assert any(f"says day {source} part 1, but is stored as day {target}" in m for m in messages)


def test_a_day_whose_objects_are_deleted_is_orphan_and_its_neighbours_stay_valid(
    archive: Harness, capsys
) -> None:
    day = due_day(4)
    for key in (jsonl_key(day), manifest_key(day)):
        archive.s3.delete_object(Bucket=archive.bucket, Key=key)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "orphan"})
    assert all("not in the bucket" in f["message"] for f in findings(doc, day))


def test_two_consecutive_deleted_days_are_both_missing(archive: Harness, capsys) -> None:
    gone = [due_day(5), due_day(4)]
    for day in gone:
        for key in (jsonl_key(day), manifest_key(day)):
            archive.s3.delete_object(Bucket=archive.bucket, Key=key)
        archive.batches.delete_many({"day": str(day)})

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        # Each missing day is listed; the days beside them (one of them empty) stay clean.
        expect(doc, dict.fromkeys(gone, "missing"))


def test_a_deleted_batch_record_leaves_orphan_objects(archive: Harness, capsys) -> None:
    day = due_day(7)
    archive.batches.delete_one({"day": str(day), "part": 1})

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "orphan"})
    assert {f["message"] for f in findings(doc, day)} == {
        f"{manifest_key(day)} is named by no batch record",
        f"{jsonl_key(day)} is named by no batch record",
    }


def test_a_stray_object_in_a_day_folder_is_orphan(archive: Harness, capsys) -> None:
    day = due_day(2)
    put(archive, f"audit/day={day}/part-0001.jsonl.gz.bak", b"left behind")

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "orphan"})
    assert "part-0001.jsonl.gz.bak" in findings(doc, day)[0]["message"]


def test_a_forged_event_rehashed_without_the_key_is_modified(archive: Harness, capsys) -> None:
    day = due_day(4)
    seq = forge_part(archive, day, key=None, rechain=False)

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "modified"})

    code, deep = verify_json(capsys, "--deep")
    assert code == 1
    expect(deep, {day: "modified"})
    kinds = {f["kind"] for f in findings(deep, day)}
    assert kinds == {"modified", "chain-break"}
    breaks = [f for f in findings(deep, day) if f["kind"] == "chain-break"]
    assert any(seq in f["seqs"] for f in breaks), "the link after the forged event breaks"


def test_an_attacker_with_the_key_is_caught_by_records_and_the_chain(
    archive: Harness, capsys
) -> None:
    """Re-hashed, re-chained, re-rooted and re-signed: the manifest verifies, but the
    batch records disagree, and the next day no longer links to the forged day."""
    day = due_day(5)
    forge_part(archive, day, key=KEY_A, rechain=True)

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        expect(doc, {day: "modified"})  # the break is charged to the modified day only
        kinds = {f["kind"] for f in findings(doc, day)}
        assert kinds == {"modified", "chain-break"}


def test_an_attacker_holding_the_key_and_the_records_still_breaks_the_chain(
    archive: Harness, capsys
) -> None:
    day, next_day = due_day(5), due_day(4)
    forge_part(archive, day, key=KEY_A, rechain=True, update_record=True)

    for extra in ((), ("--deep",)):
        code, doc = verify_json(capsys, *extra)
        assert code == 1
        # Nothing tells which side of the broken link was altered: both days are named.
        expect(doc, {day: "chain-break", next_day: "chain-break"})


def test_a_forged_hot_event_breaks_the_chain_at_the_tier_boundary(archive: Harness, capsys) -> None:
    oldest = archive.events.find_one({}, sort=[("seq", 1)])
    assert oldest["at"].date() == NOT_DUE[0]
    forged = {**oldest, "prevHash": "e" * 64}
    forged["hash"] = event_hash(forged)
    archive.events.replace_one({"_id": oldest["_id"]}, forged)
    last_before = INTERLEAVED[1]  # its last event is the chain predecessor of the oldest hot

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {last_before: "chain-break"})
    [finding] = findings(doc, last_before)
    assert f"seq {oldest['seq']} (hot)'s prevHash does not match" in finding["message"]

    code, doc = verify_json(capsys, "--to", str(NOT_DUE[-1]))
    assert statuses(doc)[str(NOT_DUE[0])] == "chain-break", "the hot side's day is named too"
    assert statuses(doc)[str(NOT_DUE[1])] == "not-due"


def test_due_events_left_in_hot_are_overdue(archive: Harness, capsys) -> None:
    day = due_day(7)
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=5)])

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "overdue"})
    assert findings(doc, day)[0]["message"].startswith("1 chained event(s) of this due day")


def test_a_due_day_never_archived_is_missing_and_lists_its_overdue_events(
    archive: Harness, capsys
) -> None:
    day = due_day(4)
    archive.s3.delete_object(Bucket=archive.bucket, Key=jsonl_key(day))
    archive.s3.delete_object(Bucket=archive.bucket, Key=manifest_key(day))
    archive.batches.delete_many({"day": str(day)})
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=h) for h in (1, 2)])

    code, doc = verify_json(capsys)
    assert code == 1
    expect(doc, {day: "missing"})
    assert [f["kind"] for f in findings(doc, day)] == ["missing", "overdue"]


# -- key rotation ------------------------------------------------------------------------


def test_key_rotation_keeps_old_days_valid_until_the_old_key_is_dropped(
    archive: Harness, capsys, monkeypatch
) -> None:
    day = due_day(7)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", KEY_B)
    monkeypatch.setenv("AUDIT_SIGNING_KEYS_PREVIOUS", KEY_A)
    archive.append([layout.day_bounds(day)[0] + dt.timedelta(hours=h) for h in (6, 7)])
    assert archive.run(day).success
    assert (
        archive.manifest(day, 2)["signing"]["keyId"] != archive.manifest(day, 1)["signing"]["keyId"]
    )

    code, doc = verify_json(capsys)
    assert code == 0, [d for d in doc["days"] if d["findings"]]
    expect(doc, {})

    monkeypatch.delenv("AUDIT_SIGNING_KEYS_PREVIOUS")
    code, doc = verify_json(capsys)
    assert code == 1
    # Every day has a part signed with A: unverifiable, never modified.
    assert set(statuses(doc).values()) == {"unverifiable"}
    assert all({f["kind"] for f in d["findings"]} == {"unverifiable"} for d in doc["days"])
    part2 = [f for f in findings(doc, day) if f.get("part") == 2]
    assert part2 == [], "part 2, signed with B, verifies"


# -- the commands' surface -----------------------------------------------------------------


def test_exit_code_2_for_usage_and_configuration_errors(
    archive: Harness, capsys, monkeypatch
) -> None:
    assert main(["verify", "--from", "yesterday"]) == 2
    assert main(["verify", "--from", str(FIRST - dt.timedelta(days=1))]) == 2
    assert "before ARCHIVE_START_DATE" in capsys.readouterr().err
    assert main(["verify", "--from", str(due_day(1)), "--to", str(due_day(2))]) == 2
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "short")
    assert main(["verify"]) == 2
    assert "AUDIT_SIGNING_KEY" in capsys.readouterr().err
    assert main(["archives", "--from", str(due_day(1)), "--to", str(due_day(2))]) == 2


def test_a_range_limits_the_days_and_uses_the_chain_outside_it(archive: Harness, capsys) -> None:
    code, doc = verify_json(capsys, "--from", str(due_day(5)), "--to", str(due_day(3)))
    assert code == 0
    assert statuses(doc) == {str(due_day(k)): "valid" for k in (5, 4, 3)}


def test_deep_draws_a_progress_bar_only_on_a_terminal(
    archive: Harness, capsys, monkeypatch
) -> None:
    assert main(["verify", "--deep"]) == 0
    assert capsys.readouterr().err == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["verify", "--deep"]) == 0
    drawn = terminal.getvalue()
    assert "reading events  [" in drawn and "100%" in drawn and "10/10 parts" in drawn
    assert drawn.endswith("\n"), "the bar's line is finished before the report"
    assert main(["verify", "--deep", "--quiet"]) == 0
    assert terminal.getvalue() == drawn, "--quiet draws nothing, even on a terminal"


def test_archives_lists_batches_newest_first(archive: Harness, capsys) -> None:
    assert main(["archives"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "day", "part", "archived", "at", "seq", "range", "events", "size", "ratio", "manifest"
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:] if re.match(r"^\d{4}-", line)]
    records = archive.records()
    assert len(rows) == len(records) == 11
    assert [(r[0], int(r[1])) for r in rows] == sorted(
        ((r["day"], r["part"]) for r in records), reverse=True
    )
    by_key = {(r["day"], r["part"]): r for r in records}
    for row in rows:
        rec = by_key[(row[0], int(row[1]))]
        assert row[-1] == rec["manifestSha256"][:12]
        if rec["eventCount"]:
            assert row[4] == f"{rec['startSeq']}-{rec['endSeq']}"
            assert int(row[5]) == rec["eventCount"]
            assert row[8].endswith("x")
        else:
            assert row[4] == "-" and row[8] == "-"
    assert lines[-1].startswith("11 parts of 10 days: ")

    assert main(["archives", "--json", "--from", str(TWO_PARTS), "--to", str(TWO_PARTS)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(b["day"], b["part"]) for b in doc["batches"]] == [
        (str(TWO_PARTS), 2),
        (str(TWO_PARTS), 1),
    ]
    assert doc["summary"]["events"] == sum(r["eventCount"] for r in archive.records(TWO_PARTS))


# -- Dagster ---------------------------------------------------------------------------------


def test_verify_job_succeeds_on_a_clean_archive_and_fails_on_a_finding(
    archive: Harness,
) -> None:
    clean = verify_job_result()
    assert clean.success
    [materialized] = [e for e in clean.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = materialized.event_specific_data.metadata
    assert meta["days"].value == 10 and meta["findings"].value == 0
    assert meta["days_valid"].value == 9 and meta["days_empty"].value == 1

    day = due_day(4)
    archive.s3.delete_object(Bucket=archive.bucket, Key=manifest_key(day))
    failed = verify_job_result(deep=True)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error.message
    assert f"{day} orphan" in error
    failure_meta = failure.event_specific_data.user_failure_data.metadata
    assert str(day) in failure_meta["findings_by_day"].value
    assert failure_meta["report"].value["days"][0]["day"] == str(day)


def test_verify_schedule_is_weekly_and_on_only_when_archive_enabled() -> None:
    from dagster import DefaultScheduleStatus, build_schedule_context

    job = build_verify_job()
    on = build_verify_schedule(
        job,
        DefinitionSettings(
            start_date=dt.date(2024, 1, 1), run_hour_utc=3, enabled=True, retention_days=90
        ),
    )
    off = build_verify_schedule(
        job,
        DefinitionSettings(
            start_date=dt.date(2024, 1, 1), run_hour_utc=3, enabled=False, retention_days=90
        ),
    )
    assert on.default_status is DefaultScheduleStatus.RUNNING
    assert off.default_status is DefaultScheduleStatus.STOPPED
    assert on.cron_schedule == "0 5 * * 0"
    when = dt.datetime(2026, 9, 6, 5, tzinfo=dt.UTC)
    [request] = on.evaluate_tick(build_schedule_context(scheduled_execution_time=when)).run_requests
    assert request.run_key == "verify:2026-09-06"

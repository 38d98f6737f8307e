"""A run that stalls and resumes after another run archived its day changes nothing of
that run's and loses no event (issue 20; SPEC 3 "Written once").

Each test runs the day in its own process (support/crash_runner.py), pauses it (SIGSTOP,
or a request or response held on the wire by the fault proxy and then SIGSTOP), lets its
lease expire, adds late events for the day, lets another run archive the day to
completion, then resumes the paused run and lets it run to its end
(support/stalls.py). Every time: the objects (bytes and ETags), batch records, log leaves
and hot events are exactly as the other run left them, the archive's invariant holds
(every event in exactly one recorded part, nothing lost), and ``verify --deep`` says
``valid``. The default set covers one pause of each kind (a request in flight, a
compare-and-swap, a fenced MongoDB write; test_written_once.py proves the fenced insert
directly); ``-m slow`` runs every other write and pause point.
"""

from __future__ import annotations

import pytest

from audit_archive_dev.embedded import Stack
from audit_archive_tests.support.harness import LOG_VERIFIER, Harness, due_day
from audit_archive_tests.support.stalls import EVENTS, LATE, Hold, Outcome, stall_and_resume
from audit_archive_tests.support.verify_archive import verify_json

JSONL = r"/day(=|%3D)[^/]+/part-0001\.jsonl\.gz$"
MANIFEST = r"/day(=|%3D)[^/]+/part-0001\.manifest\.json$"
ENTRY = r"/log/entries/000000000000\.json$"
NUMBERED = r"/log/checkpoints/000000000001$"
LATEST = r"/log/checkpoint$"


def assert_nothing_lost_or_changed(outcome: Outcome, capsys: pytest.CaptureFixture[str]) -> None:
    """The other run's work stands as it left it, and the archive verifies deep."""
    before, after = outcome.state_before_resume, outcome.state_after
    for key, (etag, data) in before["objects"].items():
        assert after["objects"].get(key) == (etag, data), f"{key} changed after the resume"
    assert after == before, "the resumed run changed the archive, its records or hot"
    assert sum(r["eventCount"] for r in after["records"]) == EVENTS + LATE
    day = str(due_day())
    code, doc = verify_json(capsys, "--deep", "--from", day, "--to", day)
    assert code == 0 and doc["days"][0]["status"] == "valid", doc
    _ = LOG_VERIFIER  # verify derives the verifier key from AUDIT_LOG_SIGNING_KEY


def test_a_put_in_flight_during_a_stall_never_lands_on_the_other_runs_object(
    harness: Harness, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Issue 20's reproduction: the paused run's part-0001.jsonl.gz PUT (50 events) is
    on the wire while another run archives 53; when it lands it is refused (If-None-Match),
    and the paused run says it did not write over the object and recorded nothing."""
    hold = Hold("hold", "PUT", JSONL)
    outcome = stall_and_resume(harness, monkeypatch, stack.s3_endpoint, "run", hold)
    assert_nothing_lost_or_changed(outcome, capsys)
    assert outcome.paused_exit == 1, outcome.paused_output
    assert "did not write over it" in outcome.paused_output
    assert "recorded and deleted nothing" in outcome.paused_output


def test_a_latest_checkpoint_put_in_flight_never_rolls_the_log_back(
    harness: Harness, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The paused run's PUT of log/checkpoint (size 1) lands after the other run
    published size 2: refused (If-None-Match, or If-Match on the ETag it read), so the
    head is never rolled back."""
    hold = Hold("hold", "PUT", LATEST)
    outcome = stall_and_resume(harness, monkeypatch, stack.s3_endpoint, "run", hold)
    assert_nothing_lost_or_changed(outcome, capsys)
    assert outcome.paused_exit == 1, outcome.paused_output
    assert "did not overwrite it" in outcome.paused_output


@pytest.mark.slow
def test_a_run_paused_before_its_record_records_nothing(
    harness: Harness, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Uploaded, paused, taken over: its batch record is refused by the fence (the lease
    token is checked in the insert's transaction), and its message says so truthfully."""
    outcome = stall_and_resume(harness, monkeypatch, stack.s3_endpoint, "stop-before-record")
    assert_nothing_lost_or_changed(outcome, capsys)
    assert outcome.paused_exit == 1, outcome.paused_output
    assert "lost the lease" in outcome.paused_output
    assert "In record_batch, before it noticed, this run changed nothing" in outcome.paused_output


def test_a_run_paused_in_the_middle_of_its_purge_deletes_nothing_more(
    harness: Harness, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """After one purge batch, paused; the other run finishes the purge and archives the
    late events; the resumed run's next delete is refused by the fence, and its message
    says how many events it had deleted (all of them in its recorded part)."""
    outcome = stall_and_resume(harness, monkeypatch, stack.s3_endpoint, "stop-mid-purge")
    assert_nothing_lost_or_changed(outcome, capsys)
    assert outcome.paused_exit == 1, outcome.paused_output
    assert "In purge_hot, before it noticed, this run deleted 10 of the 50" in (
        outcome.paused_output
    )


SLOW_HOLDS = [
    Hold("hold-response", "PUT", JSONL),
    Hold("hold", "PUT", MANIFEST),
    Hold("hold-response", "PUT", MANIFEST),
    Hold("hold", "PUT", ENTRY),
    Hold("hold-response", "PUT", ENTRY),
    Hold("hold", "PUT", NUMBERED),
    Hold("hold-response", "PUT", NUMBERED),
    Hold("hold-response", "PUT", LATEST),
]


@pytest.mark.slow
@pytest.mark.parametrize("hold", SLOW_HOLDS, ids=lambda h: f"{h.action}-{h.path}")
def test_every_write_held_on_the_wire_during_a_stall(
    harness: Harness, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys, hold: Hold
) -> None:
    """Each S3 write of a day's run, with its request or its response held while the run
    is paused: whatever the resumed run does after, the other run's work stands."""
    outcome = stall_and_resume(harness, monkeypatch, stack.s3_endpoint, "run", hold)
    assert_nothing_lost_or_changed(outcome, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["stop-before-log", "stop-before-purge"])
def test_a_run_paused_before_its_log_append_or_purge_changes_nothing_of_the_other_runs(
    harness: Harness, stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys, point: str
) -> None:
    outcome = stall_and_resume(harness, monkeypatch, stack.s3_endpoint, point)
    assert_nothing_lost_or_changed(outcome, capsys)
    assert outcome.paused_exit == 1, outcome.paused_output
    assert "lost the lease" in outcome.paused_output

"""Chaos: runs SIGKILLed in every step, then run to completion; nothing is lost.

Each run is a real process (forked from a zygote that has imported the project, see
chaos.py), killed at a random moment after it entered a chosen step, so kills land in
every one of the six steps. After every kill, every seeded event is still in hot or in
a recorded part; late events keep arriving between attempts, so there is always work.
At the end the days are run to completion and the full invariant holds.

The default suite runs a short version; the long loops are marked ``slow``:
``./dev test -m slow audit_archive_tests/reliability/test_chaos.py``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_archive.format import layout
from audit_archive.format.jsonl import parse_line
from audit_archive.format.logentry import latest_checkpoint_key
from audit_archive.format.note import parse_verifier
from audit_archive.format.witness import cosignatures
from audit_archive_tests.support.chaos import STEPS, Zygote
from audit_archive_tests.support.crash_runner import crash
from audit_archive_tests.support.harness import (
    LOG_KEY,
    LOG_VERIFIER,
    Harness,
    after_due,
    due_day,
)
from audit_archive_tests.support.reliability import failure_messages
from audit_archive_tests.support.witnesses import new_witness, running_witness, witness_entry

# How long after a step begins to kill it: up to about that step's duration here, so
# the kill lands inside it (or, for the shortest steps, just after).
DELAYS = {
    "extract": 0.15,
    "encode": 0.15,
    "sign": 0.005,
    "upload_and_confirm": 0.15,
    "record": 0.02,
    "purge": 0.6,
    "append": 0.05,
}
CHAOS_ENV = {"AUDIT_PURGE_BATCH_SIZE": "8", "AUDIT_LEASE_SECONDS": "30"}


@pytest.fixture
def zygote(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Zygote]:
    for name, value in CHAOS_ENV.items():
        monkeypatch.setenv(name, value)
        harness.env[name] = value
    workdir = Path(tempfile.mkdtemp(prefix="audit-chaos-"))  # markers and the zygote's log
    z = Zygote(workdir).start(harness.env)
    yield z
    z.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def assert_nothing_lost(harness: Harness) -> None:
    """Mid-chaos safety: every seeded event is in hot or in a recorded, readable part
    (an archived event may still be in hot: a purge was killed half-way)."""
    archived = set()
    for rec in harness.records():
        if rec["eventCount"]:
            text = gzip.decompress(harness.get(rec["jsonlKey"])).decode()
            archived |= {parse_line(line)["_id"] for line in text.splitlines()}
    hot = {d["_id"] for d in harness.events.find({}, {"_id": 1})}
    lost = [e["seq"] for e in harness.seeded if e["_id"] not in archived | hot]
    assert not lost, f"events lost: seq {lost}"


def expire_dead_transactions(harness: Harness) -> None:
    """A run killed inside a purge batch leaves its transaction open on the server;
    mongod aborts it after transactionLifetimeLimitSeconds (60 s) and a re-run's
    deletes wait for that. SecantusDB only reaps such transactions when another one
    starts, so do what the server would do a minute later, now."""
    harness.client.admin.command("killAllSessions", [])


def late_events(harness: Harness, day: dt.date, n: int) -> None:
    start = layout.day_bounds(day)[0]
    harness.append([start + dt.timedelta(minutes=harness.rng.randrange(1440)) for _ in range(n)])


def kill_loop(
    harness: Harness, zygote: Zygote, day: dt.date, kills: int, rng: random.Random
) -> Counter:
    """Runs of ``day`` killed until ``kills`` kills have landed: the first round targets
    each step in turn, later ones a random step, at a random moment inside it; a step
    never hit is then targeted at its very start."""
    landed: Counter = Counter()
    for attempt_number in range(kills * 3):
        if sum(landed.values()) >= kills:
            break
        target = STEPS[attempt_number] if attempt_number < len(STEPS) else rng.choice(STEPS)
        attempt = zygote.launch(harness.env, str(day))
        step = zygote.kill_when(attempt, target, rng.uniform(0, DELAYS[target]))
        if step is not None:
            landed[step] += 1
        expire_dead_transactions(harness)
        assert_nothing_lost(harness)
        late_events(harness, day, rng.randint(3, 12))
    for step in STEPS:
        for _ in range(5):
            if landed[step]:
                break
            attempt = zygote.launch(harness.env, str(day))
            hit = zygote.kill_when(attempt, step, 0)
            if hit is not None:
                landed[hit] += 1
            expire_dead_transactions(harness)
            assert_nothing_lost(harness)
            late_events(harness, day, 5)
    return landed


def finish(harness: Harness, days: list[dt.date]) -> None:
    for day in days:
        result = harness.run(day)
        assert result.success, failure_messages(result)


def run_chaos_day(harness: Harness, zygote: Zygote, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    day = due_day(2)
    harness.seed({day: 200, due_day(-2): 5})

    landed = kill_loop(harness, zygote, day, kills, rng)

    print(f"kills by step: {dict(landed)}")
    assert sum(landed.values()) >= kills
    assert set(landed) >= set(STEPS), f"every step was killed at least once: {dict(landed)}"
    finish(harness, [day])
    assert harness.records(day)[-1]["part"] >= 2, "late events became later parts"
    harness.assert_invariant()


def test_runs_killed_in_every_step_then_completed_lose_nothing(
    harness: Harness, zygote: Zygote
) -> None:
    run_chaos_day(harness, zygote, kills=len(STEPS), seed=7)


@pytest.mark.slow
def test_thirty_random_kills_of_a_day_then_completed_lose_nothing(
    harness: Harness, zygote: Zygote
) -> None:
    run_chaos_day(harness, zygote, kills=30, seed=11)


def run_backfill_chaos(
    harness: Harness, zygote: Zygote, kills: int, seed: int, steps: tuple[str, ...] = STEPS
) -> None:
    """A backfill of several days with concurrent runs (one day twice at once), with
    random runs killed at random moments, wave after wave, until ``kills`` kills."""
    rng = random.Random(seed)
    days = [due_day(n) for n in (4, 3, 2)]
    harness.seed({d: 80 for d in days} | {due_day(-2): 5})
    landed: Counter = Counter()
    for _ in range(kills * 3):
        if sum(landed.values()) >= kills:
            break
        wave = [zygote.launch(harness.env, str(d)) for d in [*days, rng.choice(days)]]
        victims = rng.sample(wave, k=rng.randint(1, len(wave) - 1))
        plans = []
        for victim in victims:  # the others keep running
            step = rng.choice(steps)
            plans.append((victim, step, rng.uniform(0, DELAYS[step])))
        landed.update(zygote.kill_many(plans))
        # Now, not later: a live run of the same day would wait for a dead run's purge
        # transaction (aborting the live runs' sessions too is one more fault for them).
        expire_dead_transactions(harness)
        for attempt in wave:
            zygote.wait(attempt)
        assert_nothing_lost(harness)
        late_events(harness, rng.choice(days), rng.randint(2, 6))
    print(f"kills by step: {dict(landed)}")
    assert sum(landed.values()) >= kills
    finish(harness, days)
    assert {r["day"] for r in harness.records()} == {layout.format_day(d) for d in days}
    harness.assert_invariant()


def test_a_backfill_with_concurrent_runs_killed_at_random_loses_nothing(
    harness: Harness, zygote: Zygote
) -> None:
    run_backfill_chaos(harness, zygote, kills=1, seed=3)


@pytest.mark.slow
def test_a_long_backfill_with_concurrent_runs_killed_at_random_loses_nothing(
    harness: Harness, zygote: Zygote
) -> None:
    run_backfill_chaos(harness, zygote, kills=24, seed=5)


def test_a_backfill_with_the_signed_log_on_and_runs_killed_in_its_append_loses_nothing(
    harness: Harness, zygote: Zygote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent runs append to the signed log while some are killed (inside the append,
    among other steps): the log ends dense, each part once, every checkpoint consistent
    (the log invariant in assert_invariant)."""
    from audit_archive_tests.support.harness import LOG_KEY

    harness.env["AUDIT_LOG_SIGNING_KEY"] = LOG_KEY  # each launch passes harness.env
    monkeypatch.setenv("AUDIT_LOG_SIGNING_KEY", LOG_KEY)  # and the final runs, in process
    run_backfill_chaos(harness, zygote, kills=2, seed=9, steps=("append", "append", *STEPS))


def test_a_run_killed_mid_multipart_upload_leaves_nothing_behind_after_the_rerun(
    harness: Harness, zygote: Zygote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL gives the client no chance to abort its upload: the next run of the day
    (holding the day's lease) aborts what an earlier attempt left under the day."""
    from audit_archive_tests.support.reliability import MIB, append_events, random_text

    monkeypatch.setenv("AUDIT_COLD_PART_SIZE_MIB", "5")
    harness.env["AUDIT_COLD_PART_SIZE_MIB"] = "5"
    day = due_day(2)
    start = layout.day_bounds(day)[0]
    append_events(
        harness,
        [start + dt.timedelta(hours=h) for h in range(8)],
        lambda i: {"blob": random_text(harness, MIB)},
    )
    attempt = zygote.launch(harness.env, str(day))
    # Under the day's prefix: the start-up probe's one-part upload (stores.conditional)
    # is not the one this test kills in the middle of.
    folder = layout.day_prefix(harness.settings.cold_prefix, day)
    for _ in range(30_000):  # until the child is in the middle of its multipart upload
        if harness.s3.list_multipart_uploads(Bucket=harness.bucket, Prefix=folder).get("Uploads"):
            break
        assert attempt.pid not in zygote.exits, "the run ended before uploading in parts"
    assert zygote.kill(attempt) == "upload_and_confirm"
    assert harness.s3.list_multipart_uploads(Bucket=harness.bucket).get("Uploads")
    assert_nothing_lost(harness)

    finish(harness, [day])
    assert harness.s3.list_multipart_uploads(Bucket=harness.bucket).get("Uploads") is None
    harness.assert_invariant()


# -- witnesses (SPEC 8): a crash at every step of the witnessing ---------------------------

WITNESS_CRASH_POINTS = ["witness-mid-submission", "witness-after-witnessed", "witness-after-head"]


@pytest.mark.parametrize("point", WITNESS_CRASH_POINTS)
def test_a_crash_while_witnessing_never_purges_without_a_quorum_and_the_rerun_completes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, point: str
) -> None:
    """Two witnesses, quorum 2; the worker dies at ``point``: nothing has left hot, and
    the next run gets the head cosigned by both and purges."""
    log = parse_verifier(LOG_VERIFIER)
    w1, w2 = new_witness(1), new_witness(2)
    first, day = due_day(3), due_day(2)
    harness.seed({first: 5, day: 9})
    with (
        running_witness(w1, [log], tmp_path / "w1.json") as s1,
        running_witness(w2, [log], tmp_path / "w2.json") as s2,
    ):
        entries = f"{witness_entry(w1, s1.url)},{witness_entry(w2, s2.url)}"
        for name, value in (("AUDIT_LOG_SIGNING_KEY", LOG_KEY), ("AUDIT_LOG_WITNESSES", entries)):
            monkeypatch.setenv(name, value)
            harness.env[name] = value
        assert harness.run(first).success  # a witnessed log of size 1
        crashed = crash(day, point)
        assert crashed.returncode == 9, crashed.stderr[-2000:]
        in_hot = harness.events.count_documents({"at": {"$lt": layout.day_bounds(day)[1]}})
        assert in_hot == 9, "events left hot before the rerun"
        result = harness.run(day)
        assert result.success, failure_messages(result)
    assert harness.events.count_documents({}) == 0
    head = harness.get(latest_checkpoint_key(harness.settings.cold_prefix))
    assert len(cosignatures(head, [w1.verifier, w2.verifier])) == 2
    harness.assert_invariant(now=after_due(day))

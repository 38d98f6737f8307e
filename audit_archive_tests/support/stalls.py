"""Stalled runs (issue 20): a real run of a day in its own process is paused, by itself
at a chosen point (SIGSTOP, crash_runner's ``stop-*`` points) or with one of its S3
requests or responses held on the wire by the fault proxy and then SIGSTOP. While it is
paused its lease expires, late events arrive for the day and another run archives the
day to completion; then the paused run is resumed and runs to its end. What each test
then checks: nothing the other run wrote changed, no event is lost, verify --deep is
``valid``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_archive.format import layout
from audit_archive_tests.support.faultproxy import FaultProxy, Rule
from audit_archive_tests.support.harness import LOG_KEY, Harness, after_due, due_day
from audit_archive_tests.support.reliability import ROOT, failure_messages

EVENTS, LATE = 50, 3


@dataclass(frozen=True)
class Hold:
    """Hold the paused run's first request matching ``method`` and ``path`` (a regex):
    the request itself (``hold``) or its response (``hold-response``)."""

    action: str
    method: str
    path: str


@dataclass
class Outcome:
    paused_exit: int
    paused_output: str  # the paused run's last line: RESULT ok | RESULT error: ...
    other_run_ok: bool
    state_before_resume: dict[str, Any]
    state_after: dict[str, Any]


def state(harness: Harness) -> dict[str, Any]:
    """Everything a run can change: every object (bytes and ETag, the probe's too), the
    batch records, the signed log's leaves and the hot events."""
    objects = {}
    for key in harness.object_keys(with_probe=True):
        res = harness.s3.get_object(Bucket=harness.bucket, Key=key)
        objects[key] = (res["ETag"], res["Body"].read())
    leaves = harness.db[f"{harness.settings.batches_collection}_log"]
    return {
        "objects": objects,
        "records": harness.records(),
        "leaves": list(leaves.find({}).sort("_id", 1)),
        "hot": sorted(d["_id"] for d in harness.events.find({}, {"_id": 1})),
    }


def _stopped(pid: int) -> bool:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0] == "T"


def _wait(condition: Any, what: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def stall_and_resume(
    harness: Harness, monkeypatch: Any, s3_endpoint: str, point: str, hold: Hold | None = None
) -> Outcome:
    """The scenario of issue 20 at one pause point (see the module's docstring). The
    lease is the shortest AUDIT_LEASE_SECONDS allows, so it expires soon after the pause."""
    day = due_day()
    for name, value in {
        "AUDIT_LOG_SIGNING_KEY": LOG_KEY,
        "AUDIT_PURGE_BATCH_SIZE": "10",
        "AUDIT_LEASE_SECONDS": "5",
    }.items():
        harness.env[name] = value
        monkeypatch.setenv(name, value)
    harness.seed({day: EVENTS}, gap_rate=0)
    with FaultProxy(s3_endpoint) as proxy:
        rule = proxy.add(Rule(hold.action, hold.method, hold.path)) if hold else None
        env = {**os.environ, **harness.env, "AUDIT_COLD_ENDPOINT": proxy.url}
        paused = subprocess.Popen(
            [sys.executable, "-m", "audit_archive_tests.support.crash_runner", str(day), point],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if rule is not None:
                _wait(rule.held.is_set, f"{hold} held", paused)
                os.kill(paused.pid, signal.SIGSTOP)
            _wait(lambda: _stopped(paused.pid), "the run is paused", paused)
            late_at = layout.day_bounds(day)[1] - dt.timedelta(minutes=5)
            harness.append([late_at + dt.timedelta(seconds=i) for i in range(LATE)], gap_rate=0)
            # The other run waits for the paused run's lease to expire, then archives.
            result = harness.run(day)
            assert result.success, failure_messages(result)
            before = state(harness)
            if rule is not None:
                rule.release.set()  # the request lands (or the response is sent) now
                if hold is not None and hold.action == "hold":
                    rule.forwarded.wait(30)
            os.kill(paused.pid, signal.SIGCONT)
            out, err = paused.communicate(timeout=180)
        finally:
            if paused.poll() is None:
                paused.kill()
                paused.wait()
    lines = out.strip().splitlines()
    assert lines and lines[-1].startswith("RESULT"), (out, err[-3000:])
    harness.seeded.sort(key=lambda d: d["seq"])
    harness.assert_invariant(now=after_due(day))
    return Outcome(paused.returncode, lines[-1], result.success, before, state(harness))

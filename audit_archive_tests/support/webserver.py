"""``./dev ui`` driven as an operator drives it, for the end-to-end tests: start it on
free ports with a throw-away data folder, talk to its webserver with Dagster's GraphQL
client, wait for runs, stop it and everything it started."""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster_graphql import DagsterGraphQLClient
from pymongo import MongoClient

from audit_archive.format import layout
from audit_archive_dev.embedded import free_port, s3_client

REPO = Path(__file__).resolve().parents[2]
LOCATION = "audit_archive"
REPOSITORY = "__repository__"
JOB = "audit_archive_job"
PARTITION_SET = f"{JOB}_partition_set"
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
CLI = "from audit_archive.cli import main; raise SystemExit(main())"


@dataclass
class Ui:
    process: subprocess.Popen
    home: Path
    log: Path
    port: int
    mongo_port: int
    s3_port: int
    pids: set[int] = field(default_factory=set)

    @property
    def client(self) -> DagsterGraphQLClient:
        return DagsterGraphQLClient("127.0.0.1", port_number=self.port, timeout=60)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.client._execute(text, variables)

    @functools.cached_property
    def mongo(self) -> MongoClient:
        return MongoClient(f"mongodb://127.0.0.1:{self.mongo_port}/?directConnection=true")

    @property
    def db(self):
        return self.mongo["dezky"]

    @property
    def s3(self):
        return s3_client(f"http://127.0.0.1:{self.s3_port}")


def clean_env() -> dict[str, str]:
    """The test's own environment points at the session servers: none of that leaks in."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUDIT_", "ARCHIVE_", "DAGSTER_")) and k != "MONGODB_URI"
    }


def start_ui(home: Path, *extra: str, ready: str = "Dagster UI:", timeout: float = 240) -> Ui:
    port, mongo_port, s3_port = free_port(), free_port(), free_port()
    log = home.parent / f"{home.name}-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "audit_archive_dev.ui",
                "--home",
                str(home),
                "--port",
                str(port),
                "--mongo-port",
                str(mongo_port),
                "--s3-port",
                str(s3_port),
                *extra,
            ],
            cwd=REPO,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so a failed test can still kill all of it
        )
    ui = Ui(process, home, log, port, mongo_port, s3_port)
    deadline = time.monotonic() + timeout
    while ready not in ui.output():
        if process.poll() is not None or time.monotonic() > deadline:
            kill_all(ui)
            pytest.fail(f"./dev ui did not come up:\n{ui.output()[-4000:]}")
        time.sleep(0.5)
    return ui


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.add(child)
            todo.append(child)
    return out


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def kill_all(ui: Ui) -> None:
    for pid in [ui.process.pid, *descendants(ui.process.pid), *ui.pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    ui.process.wait(10)


def stop(ui: Ui, sig: signal.Signals, timeout: float = 90) -> float:
    """Send ``sig`` to ./dev ui alone (as a terminal's Ctrl-C or `kill` does); return how
    long until it and every process it started were gone."""
    ui.pids |= descendants(ui.process.pid)
    if "mongo" in ui.__dict__:
        ui.mongo.close()
    started = time.monotonic()
    ui.process.send_signal(sig)
    try:
        ui.process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_all(ui)
        pytest.fail(f"./dev ui did not stop on {sig.name}:\n{ui.output()[-3000:]}")
    while alive(ui.pids) and time.monotonic() - started < 10:
        time.sleep(0.2)
    return time.monotonic() - started


def launch(ui: Ui, day: str) -> str:
    """What the UI's launchpad does for a partition: the partition and its set as tags."""
    return ui.client.submit_job_execution(
        JOB, tags={"dagster/partition": day, "dagster/partition_set": PARTITION_SET}
    )


RUN_QUERY = """
query($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status startTime endTime tags { key value } } } }
"""


def wait_runs(ui: Ui, run_ids: list[str], timeout: float = 180) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [ui.query(RUN_QUERY, {"runId": r})["runOrError"] for r in run_ids]
        if all(r["status"] in DONE for r in runs):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"runs did not finish in {timeout}s: {runs}")
        time.sleep(1)


BACKFILL_RUNS = """query($t: [ExecutionTag!]) { runsOrError(filter: {tags: $t}) {
  ... on Runs { results { runId } } } }"""


def wait_backfill(ui: Ui, backfill_id: str, runs: int, timeout: float) -> list[dict[str, Any]]:
    """The runs a backfill launched, once it has launched ``runs`` of them and each has
    finished (the daemon picks up a new backfill within 30 s)."""
    tag = [{"key": "dagster/backfill", "value": backfill_id}]
    deadline = time.monotonic() + timeout
    while (
        len(
            ids := [
                r["runId"] for r in ui.query(BACKFILL_RUNS, {"t": tag})["runsOrError"]["results"]
            ]
        )
        < runs
    ):
        assert time.monotonic() < deadline, "the backfill did not launch its runs"
        time.sleep(1)
    return wait_runs(ui, ids)


def newest_due() -> dt.date:
    return layout.newest_due_day(dt.datetime.now(dt.UTC), 90)


LOGS = """query($id: ID!) { logsForRun(runId: $id) { __typename ... on EventConnection {
  events { __typename ... on MessageEvent { message stepKey }
    ... on ErrorEvent { error { message causes { message } } } } } } }"""


def run_events(ui: Ui, run_id: str) -> list[dict[str, Any]]:
    """The run's events as the run page lists them."""
    return ui.query(LOGS, {"id": run_id})["logsForRun"]["events"]


def executor_of(ui: Ui, run_id: str) -> str:
    """Which executor ran the run, from its own engine events."""
    messages = [e.get("message") or "" for e in run_events(ui, run_id)]
    if any(m.startswith("Executing steps in process") for m in messages):
        return "in_process"
    if any(m.startswith("Executing steps using multiprocess executor") for m in messages):
        return "multiprocess"
    return "unknown"

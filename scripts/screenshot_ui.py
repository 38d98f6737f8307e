"""Screenshots of the Dagster UI after the demo, for the docs.

Starts ``./dev ui`` on a throw-away data folder (free ports), archives every due demo day
but a few through the webserver's GraphQL API (so the pictures show archived days and
missing ones), makes one day's run fail after extract_chained (an event that no longer
re-hashes) and re-executes it from failure as the run page's button does, then has
headless Chromium (Debian: ``apt-get install chromium``) take pictures of:

- ``ui-partitions.png``: the job's Partitions tab;
- ``ui-asset-partition.png``: Assets -> cold_archive -> Partitions, an archived day
  selected (its materialization's metadata);
- ``ui-reexecution.png``: the refused "Re-execute from failure" run, naming the click
  that works;

and stops everything.

    .venv/bin/python scripts/screenshot_ui.py [--out-dir docs] [--keep-missing 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagster_graphql import DagsterGraphQLClient
from pymongo import MongoClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit_archive.format import layout  # noqa: E402
from audit_archive_dev.embedded import free_port  # noqa: E402

JOB = "audit_archive_job"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no Chromium found: apt-get install -y chromium")


def wait_for(text: str, log: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"./dev ui did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def archive_days(port: int, days: list[str], timeout: float = 600) -> list[str]:
    client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
    # The tags the UI's launchpad sets, so the partitions view counts these runs.
    run_ids = [
        client.submit_job_execution(
            JOB, tags={"dagster/partition": d, "dagster/partition_set": f"{JOB}_partition_set"}
        )
        for d in days
    ]
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} run(s) did not finish in {timeout:.0f}s")
        for run_id in list(pending):
            status = client.get_run_status(run_id).value
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                pending.discard(run_id)
                print(f"  run {run_id[:8]}: {status}")
        time.sleep(1)
    return run_ids


REEXECUTE = """mutation($p: ReexecutionParams!) { launchPipelineReexecution(reexecutionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def refused_reexecution(port: int, mongo_port: int, day: str) -> str:
    """A run of ``day`` that fails in to_jsonl_gz (one event edited so it no longer
    re-hashes), the event put back, then Re-execute from failure: the run id of the
    refused re-execution."""
    events = MongoClient(f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true")
    hot = events["dezky"]["auditevents"]
    lo, hi = layout.day_bounds(layout.parse_day(day))
    victim = hot.find_one({"at": {"$gte": lo, "$lt": hi}}, sort=[("seq", 1)])
    hot.update_one({"_id": victim["_id"]}, {"$set": {"actor.id": "mallory"}})
    [failed] = archive_days(port, [day])
    hot.replace_one({"_id": victim["_id"]}, victim)
    events.close()
    client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
    params = {"parentRunId": failed, "strategy": "FROM_FAILURE"}
    result = client._execute(REEXECUTE, {"p": params})["launchPipelineReexecution"]
    if result["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"re-execution not launched: {result}")
    run_id = result["run"]["runId"]
    while client.get_run_status(run_id).value not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(1)
    print(f"  re-execution {run_id[:8]}: {client.get_run_status(run_id).value}")
    return run_id


def screenshot(url: str, out: Path, width: int, height: int, budget_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--virtual-time-budget={budget_ms}",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs")
    parser.add_argument(
        "--keep-missing", type=int, default=3, help="due days left unarchived (shown missing)"
    )
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--budget-ms", type=int, default=25000, help="Chromium virtual time")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="audit-archive-screenshot-"))
    port, mongo_port, s3_port = free_port(), free_port(), free_port()
    ui = start_ui(home, port, mongo_port, s3_port)
    try:
        newest_due = layout.newest_due_day(dt.datetime.now(dt.UTC), 90)
        first = newest_due - dt.timedelta(days=13)
        due = [layout.format_day(d) for d in layout.days(first, newest_due)]
        # Leave a few days in the middle unarchived: "missing" = due but not archived.
        middle = len(due) // 2
        skip = due[middle : middle + args.keep_missing]
        print(f"archiving {len(due) - len(skip)} of {len(due)} due days ...")
        archive_days(port, [d for d in due if d not in skip])
        refused = refused_reexecution(port, mongo_port, skip[0])
        base = f"http://127.0.0.1:{port}"
        shots = {
            "ui-partitions.png": f"{base}/locations/audit_archive/jobs/{JOB}/partitions",
            "ui-asset-partition.png": (
                f"{base}/assets/cold_archive?view=partitions&partition={due[0]}"
            ),
            "ui-reexecution.png": f"{base}/runs/{refused}",
        }
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for name, url in shots.items():
            out = args.out_dir / name
            print(f"screenshot of {url} ...")
            screenshot(url, out, args.width, args.height, args.budget_ms)
            print(f"wrote {out} ({out.stat().st_size:,} bytes)")
        return 0
    finally:
        ui.send_signal(signal.SIGINT)
        try:
            ui.wait(90)
        except subprocess.TimeoutExpired:
            ui.kill()
        shutil.rmtree(home, ignore_errors=True)


def start_ui(home: Path, port: int, mongo_port: int, s3_port: int) -> subprocess.Popen:
    log = home / "ui.log"
    with open(log, "wb") as out:
        ui = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "audit_archive_dev.ui",
                "--home",
                str(home / "data"),
                "--port",
                str(port),
                "--mongo-port",
                str(mongo_port),
                "--s3-port",
                str(s3_port),
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    print(f"starting ./dev ui (log: {log}) ...")
    wait_for("Dagster UI:", log, ui)
    return ui


if __name__ == "__main__":
    raise SystemExit(main())

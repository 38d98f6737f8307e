"""Screenshot of the Dagster UI's partition view after the demo, for the README.

Starts ``./dev ui`` on a throw-away data folder (free ports), archives every due demo day
but a few through the webserver's GraphQL API (so the picture shows archived days and
missing ones), then has headless Chromium (Debian: ``apt-get install chromium``) take a
picture of the job's partitions page, and stops everything.

    .venv/bin/python scripts/screenshot_ui.py [--out docs/ui-partitions.png] [--keep-missing 3]
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


def archive_days(port: int, days: list[str], timeout: float = 600) -> None:
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
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "ui-partitions.png")
    parser.add_argument(
        "--keep-missing", type=int, default=3, help="due days left unarchived (shown missing)"
    )
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--budget-ms", type=int, default=25000, help="Chromium virtual time")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="audit-archive-screenshot-"))
    port, mongo_port, s3_port = free_port(), free_port(), free_port()
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
    try:
        print(f"starting ./dev ui (log: {log}) ...")
        wait_for("Dagster UI:", log, ui)
        newest_due = layout.newest_due_day(dt.datetime.now(dt.UTC), 90)
        first = newest_due - dt.timedelta(days=13)
        due = [layout.format_day(d) for d in layout.days(first, newest_due)]
        # Leave a few days in the middle unarchived: "missing" = due but not archived.
        middle = len(due) // 2
        skip = set(due[middle : middle + args.keep_missing])
        print(f"archiving {len(due) - len(skip)} of {len(due)} due days ...")
        archive_days(port, [d for d in due if d not in skip])
        url = f"http://127.0.0.1:{port}/locations/audit_archive/jobs/{JOB}/partitions"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        print(f"screenshot of {url} ...")
        screenshot(url, args.out, args.width, args.height, args.budget_ms)
        print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
        return 0
    finally:
        ui.send_signal(signal.SIGINT)
        try:
            ui.wait(90)
        except subprocess.TimeoutExpired:
            ui.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

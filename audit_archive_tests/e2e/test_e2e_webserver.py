"""End to end through the real webserver, as an operator uses it: ``./dev ui`` (embedded
Mongo + S3, demo data, ``dagster dev`` with a temporary DAGSTER_HOME holding the repo's
dagster.yaml, so the daemon dequeues runs under the real run-queue limits), driven with
the GraphQL client that ships with Dagster. Then Ctrl-C/SIGTERM must stop everything,
and a second start must find the same data."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit_archive.format import layout
from audit_archive.format.jsonl import parse_line
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive_dev.demo import DEMO_KEY
from audit_archive_dev.embedded import port_is_free
from audit_archive_tests.support.webserver import (
    CLI,
    JOB,
    LOCATION,
    PARTITION_SET,
    REPO,
    REPOSITORY,
    Ui,
    alive,
    clean_env,
    descendants,
    executor_of,
    kill_all,
    launch,
    newest_due,
    start_ui,
    stop,
    wait_backfill,
    wait_runs,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    home = tmp_path_factory.mktemp("dev-ui") / "home"
    running = start_ui(home)
    yield running
    if running.process.poll() is None:
        kill_all(running)


# -- the tests ----------------------------------------------------------------------------


def test_the_code_location_loads_with_job_schedule_sensor_and_partitions(ui: Ui) -> None:
    data = ui.query(
        """{ repositoriesOrError { __typename ... on RepositoryConnection { nodes {
             name location { name } jobs { name } schedules { name scheduleState { status } }
             sensors { name sensorState { status } } } } } }"""
    )
    [repo] = data["repositoriesOrError"]["nodes"]
    assert repo["location"]["name"] == LOCATION
    assert JOB in {j["name"] for j in repo["jobs"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    # ARCHIVE_ENABLED is not set: both exist, both are off until an operator turns them on.
    assert schedules["audit_archive_schedule"] == "STOPPED"
    assert sensors["audit_archive_catchup_sensor"] == "STOPPED"

    keys = ui.query(
        """query($s: PipelineSelector!) { pipelineOrError(params: $s) { __typename
             ... on Pipeline { partitionKeysOrError { partitionKeys } } } }""",
        {
            "s": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": JOB,
            }
        },
    )["pipelineOrError"]["partitionKeysOrError"]["partitionKeys"]
    # The demo's two due weeks, ending at the newest due day: hot days are not partitions.
    first = newest_due() - dt.timedelta(days=13)
    assert keys == [layout.format_day(d) for d in layout.days(first, newest_due())]


def test_a_partition_launched_twice_archives_once_one_run_at_a_time(ui: Ui) -> None:
    day = layout.format_day(newest_due() - dt.timedelta(days=12))
    lo, hi = layout.day_bounds(layout.parse_day(day))
    seeded = sorted(e["seq"] for e in ui.db.auditevents.find({"at": {"$gte": lo, "$lt": hi}}))
    assert seeded, "the demo seeds events on this day"

    # Both at once, as an impatient operator (or the schedule and the sensor) would.
    runs = wait_runs(ui, [launch(ui, day), launch(ui, day)])

    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], runs
    first, second = sorted(runs, key=lambda r: r["startTime"])
    assert second["startTime"] >= first["endTime"], "the queue ran the day's runs one at a time"
    [record] = list(ui.db.archivebatches.find({"day": day}))  # no second batch
    assert record["eventCount"] == len(seeded)
    assert record["runId"] == first["runId"]
    assert ui.db.auditevents.count_documents({"at": {"$gte": lo, "$lt": hi}}) == 0
    manifest_raw = ui.s3.get_object(Bucket="dezky-audit", Key=record["manifestKey"])["Body"].read()
    assert hashlib.sha256(manifest_raw).hexdigest() == record["manifestSha256"]
    assert verify_signature(json.loads(manifest_raw), [DEMO_KEY]) is SignatureStatus.VALID
    jsonl = ui.s3.get_object(Bucket="dezky-audit", Key=record["jsonlKey"])["Body"].read()
    assert hashlib.sha256(jsonl).hexdigest() == record["jsonlSha256"]
    archived = [parse_line(x)["seq"] for x in gzip.decompress(jsonl).decode().splitlines()]
    assert archived == seeded

    # The job's partitions view: the day is green, every other day still missing.
    statuses = ui.query(
        """query($r: RepositorySelector!, $n: String!) {
             partitionSetOrError(repositorySelector: $r, partitionSetName: $n) { __typename
               ... on PartitionSet { partitionStatusesOrError { __typename
                 ... on PartitionStatuses { results { partitionName runStatus } } } } } }""",
        {
            "r": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            "n": PARTITION_SET,
        },
    )["partitionSetOrError"]["partitionStatusesOrError"]["results"]
    assert {s["partitionName"]: s["runStatus"] for s in statuses if s["runStatus"]} == {
        day: "SUCCESS"
    }
    stats = ui.query(
        """{ assetNodeOrError(assetKey: {path: ["cold_archive"]}) { __typename
             ... on AssetNode { partitionStats { numMaterialized numPartitions } } } }"""
    )["assetNodeOrError"]["partitionStats"]
    assert stats == {"numMaterialized": 1, "numPartitions": 14}
    on_asset, in_job = both_views(ui)
    assert on_asset == in_job == {day}


ASSET_STATUSES = """
fragment statuses on AssetNode { assetKey { path } partitionStats { numMaterialized }
  assetPartitionStatuses { __typename
    ... on TimePartitionStatuses { ranges { status startKey endKey } } } }
query($s: PipelineSelector!) {
  assetNodeOrError(assetKey: {path: ["cold_archive"]}) { __typename ...statuses }
  assetNodes(pipeline: $s) { ...statuses } }
"""


def _materialized(node: dict[str, Any]) -> set[str]:
    """The days a view shows as materialized (Dagster's ranges expanded)."""
    out: set[str] = set()
    for r in node["assetPartitionStatuses"]["ranges"]:
        if r["status"] == "MATERIALIZED":
            first, last = layout.parse_day(r["startKey"]), layout.parse_day(r["endKey"])
            out |= {layout.format_day(d) for d in layout.days(first, last)}
    return out


def both_views(ui: Ui) -> tuple[set[str], set[str]]:
    """The asset page's partitions, and the job's Partitions tab (for an asset job the UI
    draws the health of the job's partitioned assets: ``assetNodes(pipeline: ...)``)."""
    data = ui.query(
        ASSET_STATUSES,
        {
            "s": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": JOB,
            }
        },
    )
    [in_job] = [n for n in data["assetNodes"] if n["assetKey"]["path"] == ["cold_archive"]]
    return _materialized(data["assetNodeOrError"]), _materialized(in_job)


def test_materializing_a_day_from_the_asset_archives_it_and_both_views_agree(ui: Ui) -> None:
    day = layout.format_day(newest_due() - dt.timedelta(days=8))
    lo, hi = layout.day_bounds(layout.parse_day(day))
    seeded = ui.db.auditevents.count_documents({"at": {"$gte": lo, "$lt": hi}})
    assert seeded, "the demo seeds events on this day"

    # What the asset page's Materialize does for a picked partition: Dagster's asset job,
    # the asset selected, the partition as a tag.
    def materialize() -> dict[str, Any]:
        run_id = ui.client.submit_job_execution(
            "__ASSET_JOB", asset_selection=[["cold_archive"]], tags={"dagster/partition": day}
        )
        [run] = wait_runs(ui, [run_id])
        return run

    assert materialize()["status"] == "SUCCESS"
    [record] = list(ui.db.archivebatches.find({"day": day}))
    assert record["eventCount"] == seeded
    assert ui.db.auditevents.count_documents({"at": {"$gte": lo, "$lt": hi}}) == 0
    on_asset, in_job = both_views(ui)
    assert day in on_asset and on_asset == in_job

    # A re-run that changes nothing still leaves the day materialized in both views.
    again = materialize()
    assert again["status"] == "SUCCESS"
    assert list(ui.db.archivebatches.find({"day": day})) == [record]
    assert both_views(ui) == (on_asset, in_job)
    assert set(on_asset) == {r["day"] for r in ui.db.archivebatches.find({}, {"day": 1})}


@pytest.mark.slow  # the backfill daemon looks for new backfills every 30 s
def test_a_backfill_of_missed_days_archives_each_of_them(ui: Ui) -> None:
    days = [layout.format_day(newest_due() - dt.timedelta(days=n)) for n in (3, 2)]
    result = ui.query(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
             __typename ... on LaunchBackfillSuccess { backfillId }
             ... on PythonError { message } } }""",
        {
            "p": {
                "selector": {
                    "partitionSetName": f"{JOB}_partition_set",
                    "repositorySelector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": REPOSITORY,
                    },
                },
                "partitionNames": days,
            }
        },
    )["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    runs = wait_backfill(ui, result["backfillId"], len(days), timeout=120)
    assert {r["status"] for r in runs} == {"SUCCESS"}
    assert {executor_of(ui, r["runId"]) for r in runs} == {"in_process"}
    assert {r["day"] for r in ui.db.archivebatches.find({"day": {"$in": days}})} == set(days)


def test_sigterm_stops_everything_and_a_second_start_reuses_the_data(ui: Ui) -> None:
    if not ui.db.archivebatches.count_documents({}):  # run on its own: archive a day first
        wait_runs(ui, [launch(ui, layout.format_day(newest_due() - dt.timedelta(days=11)))])
    events = sorted(e["seq"] for e in ui.db.auditevents.find({}, {"seq": 1}))
    records = list(ui.db.archivebatches.find({}, {"_id": 0}).sort("day", 1))
    objects = {
        o["Key"]: o["ETag"]
        for o in ui.s3.list_objects_v2(Bucket="dezky-audit").get("Contents") or ()
    }
    assert records and objects
    started = descendants(ui.process.pid)
    names = " ".join(Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ") for p in started)
    for expected in ("secantusd", "moto_server", "dagster dev", "dagster_webserver", "_daemon"):
        assert expected in names, f"{expected} is one of the processes ./dev ui started"

    seconds = stop(ui, signal.SIGTERM)

    assert ui.process.returncode == 0
    assert alive(ui.pids) == set(), "every process ./dev ui started is gone"
    assert all(port_is_free(p) for p in (ui.port, ui.mongo_port, ui.s3_port))
    assert "stopping dagster dev and the embedded servers" in ui.output()
    print(f"./dev ui stopped in {seconds:.1f}s")

    again = start_ui(ui.home, "--stack-only", ready="stack ready")
    try:
        assert "reusing the data" in again.output() and "seeded" not in again.output()
        # Every variable the CLI needs is printed, demo key and secret included: pasted
        # into a clean shell, check, verify and archives work.
        pasted = [
            line.strip()
            for line in again.output().splitlines()
            if line.strip().startswith("export ")
        ]
        exports = dict(shlex.split(line)[1].split("=", 1) for line in pasted)
        assert exports["AUDIT_SIGNING_KEY"] == DEMO_KEY
        assert exports["AUDIT_COLD_SECRET_KEY"] == "testing-secret-key"
        for command in ("check", "verify", "archives"):
            # In a clean shell, as a user pastes them.
            script = "\n".join([*pasted, f'exec "$PYTHON" -c "$CLI" {command}'])
            done = subprocess.run(
                ["bash", "-c", script],
                env={**clean_env(), "PYTHON": sys.executable, "CLI": CLI},
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=180,
            )
            # verify exits 1 for findings (the demo leaves due days unarchived); 2 would
            # be a configuration error, which is what an incomplete paste gave.
            ok = (0, 1) if command == "verify" else (0,)
            assert done.returncode in ok, (command, done.stdout[-2000:], done.stderr[-2000:])
            assert "configuration error" not in done.stderr
        assert sorted(e["seq"] for e in again.db.auditevents.find({}, {"seq": 1})) == events
        assert list(again.db.archivebatches.find({}, {"_id": 0}).sort("day", 1)) == records
        kept = {
            o["Key"]: o["ETag"]
            for o in again.s3.list_objects_v2(Bucket="dezky-audit").get("Contents") or ()
        }
        assert kept == objects, "the archived objects survived the restart, byte for byte"
    finally:
        stop(again, signal.SIGINT)
    assert again.process.returncode == 0
    assert "stopping the embedded servers" in again.output()
    assert "dagster dev" not in again.output().split("stack ready", 1)[1]
    assert alive(again.pids) == set()

"""Crashes, races and refusals: whatever happens, nothing is lost and a re-run converges."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import subprocess
import sys
import threading
import tracemalloc

import pytest

from audit_archive.archive import steps
from audit_archive.format import bsonpeek, layout
from audit_archive.stores import events as event_store
from audit_archive.stores.clients import open_stores
from audit_archive.stores.cold import ObjectMismatch
from audit_archive_tests.support.harness import Harness, after_due, due_day
from audit_archive_tests.support.reliability import failure_messages, op_name, step_events


# The default set crashes where a re-run must finish another run's work (a recorded part
# not yet purged, a purge half done); test_chaos.py kills runs in every step by default.
# -m slow adds the crashes before anything is recorded (the re-run starts over; the
# objects an upload left are reused: test_a_crash_after_upload_reuses_the_identical_objects).
@pytest.mark.parametrize(
    "point",
    [
        pytest.param("after-extract", marks=pytest.mark.slow),
        pytest.param("after-encode", marks=pytest.mark.slow),
        pytest.param("after-upload", marks=pytest.mark.slow),
        "after-record",
        "mid-purge",
    ],
)
def test_a_crash_at_any_step_converges_on_rerun(harness: Harness, point: str, monkeypatch) -> None:
    monkeypatch.setenv("AUDIT_PURGE_BATCH_SIZE", "10")
    day = due_day(2)
    harness.seed({day: 60, due_day(1): 5})
    crashed = subprocess.run(
        [sys.executable, "-m", "audit_archive_tests.support.crash_runner", str(day), point],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    left_in_hot = harness.events.count_documents({"at": {"$lt": layout.day_bounds(day)[1]}})
    if point == "mid-purge":
        assert 0 < left_in_hot < 60, "the crash landed inside the purge"
    elif point != "after-record":
        assert left_in_hot == 60, "nothing is deleted before the purge"

    result = harness.run(day)  # the dead worker's lease is taken over at once

    assert result.success, failure_messages(result)
    assert len(harness.records(day)) == 1, "exactly one part for the day"
    assert harness.events.count_documents({"at": {"$lt": layout.day_bounds(day)[1]}}) == 0
    harness.assert_invariant(now=after_due(day))


def test_a_crash_after_upload_reuses_the_identical_objects(harness: Harness) -> None:
    day = due_day(2)
    harness.seed({day: 20})
    subprocess.run(
        [
            sys.executable,
            "-m",
            "audit_archive_tests.support.crash_runner",
            str(day),
            "after-upload",
        ],
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    uploaded = {k: harness.get(k) for k in harness.object_keys()}
    result = harness.run(day)
    assert result.success
    upload_meta = next(
        e.event_specific_data.metadata
        for e in result.all_events
        if op_name(e.step_key) == "upload_and_confirm" and e.event_type_value == "STEP_OUTPUT"
    )
    assert upload_meta["already_present"].value == 2
    assert {k: harness.get(k) for k in harness.object_keys()} == uploaded


def test_two_runs_of_the_same_day_at_once_give_one_result(harness: Harness) -> None:
    day = due_day(3)
    harness.seed({day: 300})
    results = []
    threads = [threading.Thread(target=lambda: results.append(harness.run(day))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 2 and all(r.success for r in results), [
        failure_messages(r) for r in results
    ]
    writers = [r for r in results if "purge_hot" in step_events(r, "STEP_SUCCESS")]
    assert len(writers) == 1, "one run archives, the other finds the day done"
    assert [r["part"] for r in harness.records(day)] == [1]
    harness.assert_invariant(now=after_due(day))


def test_a_day_that_is_not_due_changes_nothing_and_says_when_it_will_be(harness: Harness) -> None:
    day = due_day(-3)  # three days short of due
    harness.seed({day: 10})
    stores = open_stores(harness.settings)
    try:
        result = steps.extract(stores, day, "owner", dt.datetime.now(dt.UTC))
    finally:
        stores.close()
    assert isinstance(result, steps.Skip)
    assert "not due yet" in result.reason and "Nothing was archived or deleted" in result.reason
    assert harness.events.count_documents({}) == 10 and harness.records() == []
    # and the UI cannot launch it: it is not a partition; a run asked for it with a
    # partition tag (GraphQL, the API) is refused when it starts, saying why (issue #17)
    refused = harness.run_tagged(day)
    assert not refused.success
    assert re.search(r"is not due yet: .* Nothing was changed", failure_messages(refused))
    assert harness.object_keys() == [] and harness.events.count_documents({}) == 10


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AUDIT_SIGNING_KEY", "too-short-secret", "AUDIT_SIGNING_KEY: is too short"),
        (
            "AUDIT_COLD_BUCKET",
            "no-such-bucket-here",
            "AUDIT_COLD_BUCKET: bucket 'no-such-bucket-here' does not exist",
        ),
        (
            "MONGODB_URI",
            "mongodb://app:Sup3rSecret@127.0.0.1:9/dezky?serverSelectionTimeoutMS=500",
            "MONGODB_URI: MongoDB is not reachable",
        ),
        ("AUDIT_COLD_ENDPOINT", "http://127.0.0.1:9", "AUDIT_COLD_ENDPOINT"),
    ],
)
def test_bad_configuration_fails_the_run_before_any_io_naming_the_variable(
    harness: Harness, monkeypatch, variable: str, value: str, expected: str
) -> None:
    day = due_day(1)
    harness.seed({day: 5})
    monkeypatch.setenv(variable, value)
    result = harness.run(day)
    assert not result.success
    text = "\n".join(str(e) for e in result.all_events) + failure_messages(result)
    assert expected in text
    for secret in ("too-short-secret", "Sup3rSecret", "testing-secret-key"):
        assert secret not in text
    assert step_events(result, "STEP_START") == [], "no op started"
    assert harness.events.count_documents({}) == 5


def test_a_days_events_stream_through_bounded_memory(harness: Harness, monkeypatch) -> None:
    # A small cursor batch and read chunk, so both day sizes stream through many
    # getMores and many decoded batches, as a large day does with the defaults.
    monkeypatch.setattr(event_store, "DAY_CURSOR_BATCH", 300)
    monkeypatch.setattr(bsonpeek, "READ_CHUNK", 256 * 1024)
    peaks = {}
    for n, day in ((2100, due_day(5)), (4500, due_day(4))):
        harness.seed({day: n})
        stores = open_stores(harness.settings)
        try:
            tracemalloc.start()
            x = steps.extract(stores, day, f"mem-{n}", dt.datetime.now(dt.UTC))
            steps.encode(x, "audit", 5000)
            peaks[n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            steps.release(stores, str(day), f"mem-{n}")
        finally:
            stores.close()
    # Held as a list, 2,400 more events would add ~8 MB of Python objects (~1.6 MB of
    # BSON); streamed, the peak is the same bounded batch both times.
    assert peaks[4500] - peaks[2100] < 1_000_000, peaks


def test_confirmation_checks_size_and_checksum_not_just_existence(
    harness: Harness, tmp_path
) -> None:
    stores = open_stores(harness.settings)
    cold = stores.cold
    path = tmp_path / "obj"
    path.write_bytes(b"audit" * 1000)
    import hashlib

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    cold.put_file("k/obj", str(path), 5000, sha, "application/octet-stream")
    assert cold.confirm("k/obj", 5000, sha).method == "checksum"
    # same size, other bytes, written without a checksum: the read-back catches it
    harness.s3.put_object(Bucket=harness.bucket, Key="k/obj", Body=b"AUDIT" * 1000)
    with pytest.raises(ObjectMismatch, match="sha256"):
        cold.confirm("k/obj", 5000, sha)
    with pytest.raises(ObjectMismatch, match="bytes"):
        cold.confirm("k/obj", 4999, sha)
    with pytest.raises(ObjectMismatch, match="not in bucket"):
        cold.confirm("k/missing", 1, sha)
    harness.s3.put_object(Bucket=harness.bucket, Key="k/plain", Body=path.read_bytes())
    assert cold.confirm("k/plain", 5000, sha).method in ("read-back", "checksum")
    stores.close()


def test_large_parts_upload_in_multiple_parts_and_confirm(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("AUDIT_COLD_PART_SIZE_MIB", "5")
    day = due_day(1)
    docs = harness.seed({day: 90})
    # make the payload incompressible so the gzip object exceeds one 5 MiB part
    for d in docs:
        noise = os.urandom(60_000).hex()
        harness.events.update_one({"_id": d["_id"]}, {"$set": {"meta.blob": noise}})
        d["meta"]["blob"] = noise
    # re-chain after the payload change
    from audit_archive.format.canonical import ZERO_HASH, event_hash

    prev = ZERO_HASH
    for d in sorted(docs, key=lambda d: d["seq"]):
        d["prevHash"] = prev
        d["hash"] = event_hash(d)
        prev = d["hash"]
        harness.events.replace_one({"_id": d["_id"]}, d)
    result = harness.run(day)
    assert result.success, failure_messages(result)
    [record] = harness.records(day)
    assert record["bytesCompressed"] > 5 * 2**20
    head = harness.s3.head_object(
        Bucket=harness.bucket, Key=record["jsonlKey"], ChecksumMode="ENABLED"
    )
    assert head["ContentLength"] == record["bytesCompressed"]
    # The record says how it was uploaded, and its composite is the server's checksum.
    assert record["jsonlParts"] == -(-record["bytesCompressed"] // (5 * 2**20)) >= 2
    assert record["jsonlPartSize"] == 5 * 2**20
    reported = base64.b64decode(head["ChecksumSHA256"].split("-")[0]).hex()
    assert record["jsonlCompositeSha256"] == reported
    harness.assert_invariant(now=after_due(day))


def test_the_code_location_refuses_to_load_without_a_usable_signing_key(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "ARCHIVE_"))}
    for key, problem in ((None, "is required"), ("short-secret-value", "is too short")):
        run_env = dict(env) if key is None else {**env, "AUDIT_SIGNING_KEY": key}
        loaded = subprocess.run(
            [sys.executable, "-c", "import audit_archive.definitions"],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loaded.returncode != 0
        assert f"AUDIT_SIGNING_KEY: {problem}" in loaded.stderr
        assert "short-secret-value" not in loaded.stderr


def test_secrets_never_reach_the_event_log_or_run_config(harness: Harness) -> None:
    day = due_day(1)
    harness.seed({day: 10})
    result = harness.run(day)
    assert result.success
    everything = "\n".join(
        [str(e) for e in result.all_events] + [str(result.dagster_run.run_config)]
    )
    for secret in (harness.env["AUDIT_SIGNING_KEY"], harness.env["AUDIT_COLD_SECRET_KEY"]):
        assert secret not in everything
    outputs = {
        op_name(e.step_key): e.event_specific_data.metadata
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
    }
    assert outputs["extract_chained"]["events"].value == 10
    assert outputs["to_jsonl_gz"]["compression_ratio"].value > 1
    assert (
        outputs["sign_manifest"]["manifest_sha256"].value
        == harness.records(day)[0]["manifestSha256"]
    )
    assert outputs["upload_and_confirm"]["confirmed_by"].value == "checksum"
    assert (
        outputs["record_batch"]["seq_range"].value
        == f"{harness.records(day)[0]['startSeq']}-{harness.records(day)[0]['endSeq']}"
    )
    assert outputs["purge_hot"]["deleted"].value == 10

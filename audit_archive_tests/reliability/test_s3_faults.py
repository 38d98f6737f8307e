"""S3 faults between the archive and the bucket, injected by a proxy (faultproxy.py).

Whatever the wire does, nothing is deleted from hot unless its part is safely in the
bucket, no incomplete multipart upload is left behind, and the job never sends a
DeleteObject or DeleteObjects (only AbortMultipartUpload of its own uploads).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from audit_archive.format import layout
from audit_archive_tests.support.faultproxy import FaultProxy, Rule
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import (
    MIB,
    append_events,
    failure_messages,
    random_text,
    start_strict_s3,
    use_s3_endpoint,
)

# What the S3 policy in docs/security.md allows (no DeleteObject, no DeleteObjects).
ALLOWED = {
    "HeadBucket",
    "GetObjectLockConfiguration",
    "HeadObject",
    "GetObject",
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListObjects",
    "ListMultipartUploads",
}
JSONL = r"\.jsonl\.gz$"
MANIFEST = r"\.manifest\.json$"
DAY = r"/day(=|%3D)"


@pytest.fixture
def proxy(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The session's S3 server behind a fault proxy; the archive talks to the proxy."""
    upstream = harness.s3.meta.endpoint_url
    with FaultProxy(upstream) as p:
        harness.env["AUDIT_COLD_ENDPOINT"] = p.url
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", p.url)
        yield p


def later(day: dt.date) -> dt.datetime:
    """A moment when ``day`` is due (for the invariant)."""
    return layout.day_bounds(day)[1] + dt.timedelta(days=91)


def assert_no_deletes(proxy: FaultProxy) -> None:
    ops = proxy.operations()
    assert "DeleteObject" not in ops and "DeleteObjects" not in ops, ops


def seed_big_day(harness: Harness, day: dt.date, mib: int = 8) -> list[dict]:
    """A day whose JSONL.gz needs two multipart parts at the 5 MiB minimum part size."""
    start = layout.day_bounds(day)[0]
    ats = [start + dt.timedelta(minutes=10 * i) for i in range(mib)]
    return append_events(harness, ats, lambda i: {"blob": random_text(harness, MIB)})


def test_transient_errors_and_dropped_connections_are_retried_and_the_run_succeeds(
    harness: Harness, proxy: FaultProxy
) -> None:
    day = due_day(2)
    harness.seed({day: 40})
    proxy.add(Rule("status", method="PUT", path=JSONL, status=503, times=2))
    proxy.add(Rule("drop", method="PUT", path=MANIFEST, times=1))
    proxy.add(Rule("status", method="HEAD", path=MANIFEST, status=500, times=1))
    proxy.add(Rule("drop", method="HEAD", path=JSONL, times=1))

    result = harness.run(day)

    assert result.success, failure_messages(result)
    outcomes = [(r.operation, r.outcome) for r in proxy.without_probe()]
    puts = [o for op, o in outcomes if op == "PutObject"]
    assert puts.count("status 503") == 2 and puts.count("drop") == 1, outcomes
    assert puts.count("forwarded 200") == 2, "each object is finally written once"
    assert all(rule.fired == rule.times for rule in proxy.rules), "every fault was hit"
    assert [r["part"] for r in harness.records(day)] == [1]
    assert_no_deletes(proxy)
    harness.assert_invariant(now=later(day))


def test_a_permanent_outage_fails_the_run_cleanly_and_a_rerun_converges(
    harness: Harness, proxy: FaultProxy
) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 25})
    # Every PUT of the day's objects (the start-up probe's, under probe/, gets through).
    outage = proxy.add(Rule("status", method="PUT", path=DAY, status=503, times=None))

    result = harness.run(day)

    assert not result.success
    message = failure_messages(result)
    assert "upload_and_confirm failed" in message and "ServiceUnavailable" in message
    assert "testing-secret-key" not in message
    assert outage.fired >= 8, "the client retried (with backoff) before giving up"
    assert harness.events.count_documents({}) == len(seeded), "nothing deleted"
    assert harness.records() == [] and harness.object_keys() == []

    proxy.clear()
    assert harness.run(day).success
    assert_no_deletes(proxy)
    harness.assert_invariant(now=later(day))


def test_a_connection_cut_mid_multipart_upload_leaves_no_incomplete_upload(
    harness: Harness, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_COLD_PART_SIZE_MIB", "5")
    day = due_day(3)
    events = seed_big_day(harness, day)
    cut = proxy.add(Rule("cut", method="PUT", query="partNumber=2", times=None))

    result = harness.run(day)

    assert not result.success
    ops = proxy.operations()
    assert "CreateMultipartUpload" in ops and "AbortMultipartUpload" in ops, ops
    assert cut.fired >= 2, "the cut part was retried before the upload was given up"
    assert harness.s3.list_multipart_uploads(Bucket=harness.bucket).get("Uploads") is None
    assert harness.events.count_documents({}) == len(events), "nothing deleted"
    assert harness.records() == [] and harness.object_keys() == []

    proxy.clear()
    assert harness.run(day).success, "the re-run converges"
    assert proxy.operations().count("UploadPart") >= cut.fired + 3
    assert harness.s3.list_multipart_uploads(Bucket=harness.bucket).get("Uploads") is None
    assert_no_deletes(proxy)
    assert set(proxy.operations()) <= ALLOWED, set(proxy.operations()) - ALLOWED
    harness.assert_invariant(now=later(day))


def test_a_put_body_corrupted_in_flight_is_rejected_by_its_checksum_and_nothing_is_deleted(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # moto does not verify x-amz-checksum-sha256; S3 and MinIO do: use the strict server.
    server = start_strict_s3(tmp_path / "strict-s3.log")
    try:
        with FaultProxy(f"http://127.0.0.1:{server.port}") as proxy:
            use_s3_endpoint(harness, monkeypatch, f"http://127.0.0.1:{server.port}", proxy.url)
            day = due_day(2)
            seeded = harness.seed({day: 30})
            corrupt = proxy.add(Rule("corrupt", method="PUT", path=JSONL, times=1))

            result = harness.run(day)

            assert not result.success
            assert corrupt.fired == 1
            assert ("PutObject", "corrupt -> 400") in [
                (r.operation, r.outcome) for r in proxy.requests
            ]
            assert "BadDigest" in failure_messages(result)
            assert harness.events.count_documents({}) == len(seeded), "nothing deleted"
            assert harness.records() == [] and harness.object_keys() == []

            assert harness.run(day).success
            assert_no_deletes(proxy)
            harness.assert_invariant(now=later(day))
    finally:
        server.stop()


@pytest.mark.slow  # every test here asserts no deletes; this one adds the allowed set
def test_the_job_never_deletes_objects_only_aborts_its_own_uploads(
    harness: Harness, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Least privilege in practice: a day archived in parts, re-run, and an aborted
    multipart upload: the requests are only those the S3 policy in docs/security.md allows."""
    monkeypatch.setenv("AUDIT_COLD_PART_SIZE_MIB", "5")
    day = due_day(4)
    seed_big_day(harness, day, mib=7)
    proxy.add(Rule("status", method="POST", query="uploadId=", status=400, code="InvalidPart"))
    assert not harness.run(day).success  # CompleteMultipartUpload refused: upload aborted
    assert harness.run(day).success
    harness.append([layout.day_bounds(day)[0] + dt.timedelta(hours=23)])
    assert harness.run(day).success  # late event: part 2
    assert harness.run(day).success  # nothing new

    ops = set(proxy.operations())
    assert ops <= ALLOWED, ops - ALLOWED
    aborted = {r.params["uploadId"][0] for r in proxy.requests if r.method == "DELETE"}
    created = {
        r.params["uploadId"][0]
        for r in proxy.requests
        if r.operation in ("UploadPart", "CompleteMultipartUpload")
    }
    assert aborted and aborted <= created, "aborts only of uploads this job created"
    assert [r["part"] for r in harness.records(day)] == [1, 2]
    harness.assert_invariant(now=later(day))

"""Confirming uploads, on servers that keep checksums and on servers that do not.

- Every upload says how it was uploaded (one PUT, or N parts of a given size), and each
  batch record keeps it (``jsonlParts``, ``jsonlPartSize``, ``jsonlCompositeSha256``):
  the checksum the server keeps depends on it, and ``AUDIT_COLD_PART_SIZE_MIB`` may have
  changed since. ``cold.py`` is the one place that composes a multipart checksum.
- ``AUDIT_COLD_CONFIRM``: ``auto`` uses the server's SHA-256 when it keeps one and reads the
  object back when it does not; ``checksum`` refuses a server that keeps none; ``readback``
  always reads the object back. moto keeps checksums; the fault proxy with
  ``drop_checksums`` plays a server that does not.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_archive.errors import ConfigError
from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores, open_stores
from audit_archive.stores.cold import (
    ChecksumNotKept,
    ColdStore,
    ConfirmMode,
    ObjectMismatch,
    PartHasher,
    UploadLayout,
    checksum_confirms,
    composite_sha256,
    parts_of,
)
from audit_archive_tests.support.faultproxy import FaultProxy
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages, op_name

MIB = 1 << 20


def _file(tmp_path: Path, name: str, size: int) -> tuple[str, str]:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def stores(harness: Harness) -> Iterator[Stores]:
    s = open_stores(harness.settings)
    yield s
    s.close()


def _cold(stores: Stores, endpoint_stores: Stores | None = None, **kwargs) -> ColdStore:
    base = (endpoint_stores or stores).cold
    return ColdStore(base.client, base.bucket, part_size=5 * MIB, **kwargs)


# -- how an object was uploaded -------------------------------------------------------------


def test_uploads_report_their_layout_and_cold_composes_the_servers_checksum(
    stores: Stores, tmp_path: Path
) -> None:
    cold = _cold(stores)
    small, small_sha = _file(tmp_path, "small", 1000)
    large, large_sha = _file(tmp_path, "large", 11 * MIB + 7)

    assert cold.put_file("k/small", small, 1000, small_sha, "x/y") == UploadLayout(1, 1000)
    layout = cold.put_file("k/large", large, 11 * MIB + 7, large_sha, "x/y")

    assert (
        (layout.parts, layout.part_size)
        == (3, 5 * MIB)
        == (parts_of(11 * MIB + 7, 5 * MIB), 5 * MIB)
    )
    reported = cold.head("k/large")["ChecksumSHA256"]
    assert base64.b64decode(reported.split("-")[0]).hex() == layout.composite_sha256
    hasher = PartHasher(5 * MIB)
    for chunk in cold.iter_chunks("k/large", chunk_size=3 * MIB + 1):
        hasher.update(chunk)
    assert (hasher.sha256(), hasher.composite_sha256()) == (large_sha, layout.composite_sha256)
    # The server's checksum confirms the content only under the layout it was made with.
    assert checksum_confirms(reported, large_sha, layout)
    assert not checksum_confirms(reported, large_sha, None)
    other = UploadLayout(2, 6 * MIB, composite_sha256([b"\0" * 32, b"\1" * 32]))
    assert not checksum_confirms(reported, large_sha, other)
    assert checksum_confirms(cold.head("k/small")["ChecksumSHA256"], small_sha, None)
    assert not checksum_confirms(None, small_sha, UploadLayout(1, 1000))
    # confirm() composes the multipart checksum from the file when no layout is given.
    confirmed = cold.confirm("k/large", 11 * MIB + 7, large_sha, large)
    assert (confirmed.method, confirmed.layout) == ("checksum", layout)


def test_new_batch_records_say_how_the_events_object_was_uploaded(harness: Harness) -> None:
    day, empty = due_day(3), due_day(2)
    harness.seed({day: 25, due_day(-2): 2})

    assert harness.run(day).success and harness.run(empty).success

    [record] = harness.records(day)
    assert record["jsonlParts"] == 1
    assert record["jsonlPartSize"] == record["bytesCompressed"]
    assert record["jsonlCompositeSha256"] is None
    assert UploadLayout.from_record(record) == UploadLayout(1, record["bytesCompressed"])
    [nothing] = harness.records(empty)
    assert (nothing["jsonlParts"], nothing["jsonlPartSize"]) == (0, 0)
    assert UploadLayout.from_record(nothing) is None
    assert UploadLayout.from_record({"day": "2024-01-01"}) is None  # an older record


# -- AUDIT_COLD_CONFIRM ----------------------------------------------------------------------


@pytest.mark.parametrize("drop", [False, True], ids=["keeps-checksums", "drops-checksums"])
@pytest.mark.parametrize("mode", list(ConfirmMode))
def test_each_confirmation_mode_on_a_server_with_and_without_checksums(
    stores: Stores, tmp_path: Path, mode: ConfirmMode, drop: bool
) -> None:
    path, sha = _file(tmp_path, "obj", 4000)
    with FaultProxy(stores.cold.client.meta.endpoint_url, drop_checksums=drop) as proxy:
        settings = Settings.from_env({**os.environ, "AUDIT_COLD_ENDPOINT": proxy.url})
        through = open_stores(settings, check=False)
        try:
            cold = _cold(stores, through, confirm_mode=mode)
            layout = cold.put_file("k/obj", path, 4000, sha, "x/y")
            before = len(proxy.requests)
            if mode is ConfirmMode.CHECKSUM and drop:
                with pytest.raises(ChecksumNotKept, match="AUDIT_COLD_CONFIRM"):
                    cold.confirm("k/obj", 4000, sha, path, layout)
                return
            confirmed = cold.confirm("k/obj", 4000, sha, path, layout)
        finally:
            through.close()
    read_back = mode is ConfirmMode.READBACK or drop
    assert confirmed.method == ("read-back" if read_back else "checksum")
    reads = [r for r in proxy.requests[before:] if r.operation == "GetObject"]
    assert len(reads) == (1 if read_back else 0)
    assert confirmed.layout == UploadLayout(1, 4000)


def test_a_read_back_catches_what_the_servers_checksum_would_not(
    stores: Stores, tmp_path: Path
) -> None:
    """readback trusts only the bytes: an object rewritten with other bytes of the same
    size, with a forged checksum header, is caught (auto trusts the server's checksum)."""
    path, sha = _file(tmp_path, "obj", 4000)
    forged = os.urandom(4000)
    stores.cold.client.put_object(
        Bucket=stores.cold.bucket,
        Key="k/obj",
        Body=forged,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(forged).digest()).decode(),
    )
    with pytest.raises(ObjectMismatch, match="read back"):
        _cold(stores, confirm_mode=ConfirmMode.READBACK).confirm("k/obj", 4000, sha, path)


def test_the_job_confirms_by_read_back_on_a_server_without_checksums_or_fails_when_told_not_to(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    day, other = due_day(3), due_day(2)
    harness.seed({day: 20, other: 10, due_day(-2): 2})
    with FaultProxy(harness.s3.meta.endpoint_url, drop_checksums=True) as proxy:
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", proxy.url)
        archived = harness.run(day)  # auto, the default
        monkeypatch.setenv("AUDIT_COLD_CONFIRM", "checksum")
        refused = harness.run(other)
        monkeypatch.setenv("AUDIT_COLD_CONFIRM", "auto")
        converged = harness.run(other)  # the object the refused run left is read back

    assert not refused.success
    message = failure_messages(refused)
    assert "AUDIT_COLD_CONFIRM" in message and "no SHA-256 checksum" in message, message
    assert archived.success, failure_messages(archived)
    confirmed_by = {
        op_name(e.step_key): e.event_specific_data.metadata["confirmed_by"].value
        for e in archived.all_events
        if e.event_type_value == "STEP_OUTPUT" and op_name(e.step_key) == "upload_and_confirm"
    }
    assert confirmed_by == {"upload_and_confirm": "read-back"}
    [record] = harness.records(day)
    assert record["jsonlParts"] == 1  # this run uploaded it, so it knows how
    assert converged.success, failure_messages(converged)
    assert harness.records(other)[0]["jsonlParts"] is None  # left by another run: unknown
    harness.assert_invariant()


def test_an_unknown_confirmation_mode_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AUDIT_SIGNING_KEY": "k" * 32, "AUDIT_COLD_CONFIRM": "trust-me"})
    assert e.value.variable == "AUDIT_COLD_CONFIRM" and "readback" in str(e.value)
    assert Settings.from_env({"AUDIT_SIGNING_KEY": "k" * 32}).cold_confirm == "auto"

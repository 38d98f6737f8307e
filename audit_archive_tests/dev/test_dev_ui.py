"""``./dev ui``'s pieces that need no Dagster: the embedded S3 keeps its objects across a
crash and a restart, and a port in use is refused up front with the way out named.
(The whole command, with dagster dev, is driven in test_e2e_webserver.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from audit_archive_dev import s3_persist
from audit_archive_dev.embedded import free_port, s3_client

REPO = Path(__file__).resolve().parents[2]


def _client(port: int):
    return s3_client(f"http://127.0.0.1:{port}", checksums_when_required=True)


def _contents(s3, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or ()]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _crash(server) -> None:
    """SIGKILL: no chance to flush or save anything on the way out."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)


def test_embedded_s3_objects_survive_a_crash_and_a_restart_on_another_port(
    tmp_path: Path,
) -> None:
    server, first = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        assert first.object_count == 0
        s3 = _client(server.port)
        s3.create_bucket(Bucket="dezky-audit")
        body = b'{"seq":1}\n' * 50
        s3.put_object(
            Bucket="dezky-audit",
            Key="audit/day=2026-01-01/part-0001.jsonl.gz",
            Body=body,
            ContentType="application/gzip",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        )
        big = os.urandom(5 << 20) + b"tail"  # multipart: 5 MiB + 4 bytes
        upload = s3.create_multipart_upload(Bucket="dezky-audit", Key="big key+1")
        etags = []
        for number, chunk in ((1, big[: 5 << 20]), (2, big[5 << 20 :])):
            res = s3.upload_part(
                Bucket="dezky-audit",
                Key="big key+1",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=chunk,
            )
            etags.append({"PartNumber": number, "ETag": res["ETag"]})
        s3.complete_multipart_upload(
            Bucket="dezky-audit",
            Key="big key+1",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": etags},
        )
        s3.put_object(Bucket="dezky-audit", Key="deleted", Body=b"x")
        s3.delete_object(Bucket="dezky-audit", Key="deleted")
        s3.copy_object(
            Bucket="dezky-audit",
            Key="copy",
            CopySource={"Bucket": "dezky-audit", "Key": "audit/day=2026-01-01/part-0001.jsonl.gz"},
        )
        before = _contents(s3, "dezky-audit")
    finally:
        _crash(server)

    again, restored = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        s3 = _client(again.port)
        assert restored.object_count == 3
        assert _contents(s3, "dezky-audit") == before
        assert set(before) == {"audit/day=2026-01-01/part-0001.jsonl.gz", "big key+1", "copy"}
        head = s3.head_object(Bucket="dezky-audit", Key="audit/day=2026-01-01/part-0001.jsonl.gz")
        assert head["ContentType"] == "application/gzip"
    finally:
        again.stop()
    # The restart rewrote the recording as plain PUTs: a third start reads it just as well.
    recorded = [json.loads(line) for line in (tmp_path / s3_persist.RECORDING).open()]
    assert not any("uploadId" in e["url"] for e in recorded), "multipart compacted away"
    third, _ = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        assert _contents(_client(third.port), "dezky-audit") == before
    finally:
        third.stop()


def test_writes_the_server_refused_by_their_condition_are_not_restored(tmp_path: Path) -> None:
    # The recorder writes a request down before the server answers it: the archive's
    # written-once writes (If-None-Match: *, If-Match) that were refused are recorded too.
    server, _ = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        s3 = _client(server.port)
        s3.create_bucket(Bucket="once")
        etag = s3.put_object(Bucket="once", Key="a", Body=b"first", IfNoneMatch="*")["ETag"]
        with pytest.raises(ClientError):
            s3.put_object(Bucket="once", Key="a", Body=b"refused", IfNoneMatch="*")
        with pytest.raises(ClientError):
            s3.put_object(Bucket="once", Key="a", Body=b"refused", IfMatch='"' + "0" * 32 + '"')
        s3.put_object(Bucket="once", Key="b", Body=b"old")
        upload = s3.create_multipart_upload(Bucket="once", Key="b")["UploadId"]
        part = s3.upload_part(Bucket="once", Key="b", UploadId=upload, PartNumber=1, Body=b"x")
        with pytest.raises(ClientError):
            s3.complete_multipart_upload(
                Bucket="once",
                Key="b",
                UploadId=upload,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
                IfNoneMatch="*",
            )
        s3.abort_multipart_upload(Bucket="once", Key="b", UploadId=upload)
        s3.put_object(Bucket="once", Key="a", Body=b"second", IfMatch=etag)
        before = _contents(s3, "once")
    finally:
        server.stop()
    assert before == {"a": b"second", "b": b"old"}

    again, _ = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        assert _contents(_client(again.port), "once") == before
    finally:
        again.stop()


def test_an_interrupted_restore_starts_again_from_the_previous_recording(tmp_path: Path) -> None:
    server, _ = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        s3 = _client(server.port)
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="a", Body=b"alpha")
    finally:
        server.stop()
    # As if the next start died half-way through restoring: the previous recording is
    # still there and the new one holds only part of the objects.
    (tmp_path / s3_persist.RECORDING).rename(tmp_path / s3_persist.PREVIOUS)
    (tmp_path / s3_persist.RECORDING).write_text("")

    again, restored = s3_persist.start_persistent_s3(None, tmp_path)
    try:
        assert restored.object_count == 1
        assert _contents(_client(again.port), "kept") == {"a": b"alpha"}
        assert not (tmp_path / s3_persist.PREVIOUS).exists()
    finally:
        again.stop()


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    mongo_port, s3_port = free_port(), free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "audit_archive_dev.ui",
                "--home",
                str(tmp_path / "home"),
                "--port",
                str(taken),
                "--mongo-port",
                str(mongo_port),
                "--s3-port",
                str(s3_port),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {taken} for the Dagster UI is already in use" in result.stderr
    assert "--port N or AUDIT_DEV_UI_PORT=N" in result.stderr
    assert not (tmp_path / "home").exists(), "nothing was started or created"


@pytest.mark.parametrize(
    ("variable", "flag"),
    [("AUDIT_DEV_MONGO_PORT", "--mongo-port"), ("AUDIT_DEV_S3_PORT", "--s3-port")],
)
def test_ports_come_from_the_environment_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, flag: str
) -> None:
    from audit_archive_dev import ui

    monkeypatch.setenv(variable, "4242")
    args = ui.parse_args(["--home", str(tmp_path)])
    assert getattr(args, flag.lstrip("-").replace("-", "_")) == 4242
    monkeypatch.setenv(variable, "not-a-port")
    with pytest.raises(ui.UsageError, match=variable):
        ui.parse_args([])


def test_a_second_ui_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    """Two SecantusDB servers on one folder would corrupt it (even on different ports)."""
    from audit_archive_dev import ui

    refused = f"in use by another ./dev ui \\(pid {os.getpid()}\\)"
    with ui.home_lock(tmp_path), pytest.raises(ui.UsageError, match=refused):  # noqa: SIM117
        with ui.home_lock(tmp_path):
            pass
    with ui.home_lock(tmp_path):  # released when the first one ends
        pass

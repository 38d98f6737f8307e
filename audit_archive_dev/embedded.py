"""Embedded MongoDB (SecantusDB) and S3 (moto) servers, each in its own process.

Real servers on loopback TCP ports, reached with pymongo and boto3 exactly as MongoDB
and MinIO are in production. Own processes so a test can kill the archiver without
killing the stores, and so the servers' CPU is not the archiver's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The embedded S3 server's demo credentials (moto accepts any; printed by ./dev ui).
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing-secret-key"


class PortInUse(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _require_free(port: int, what: str, variable: str) -> None:
    if not port_is_free(port):
        raise PortInUse(
            f"port {port} for {what} is already in use on 127.0.0.1: stop what uses it, "
            f"or choose another port with {variable}"
        )


def _on_a_free_port(start: Callable[[int], ServerProcess], attempts: int = 4) -> ServerProcess:
    """Start on a free port, choosing again if another process took it in between
    (parallel test workers choose ports at the same time)."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except (PortInUse, RuntimeError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


@dataclass
class ServerProcess:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path | None = None

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def _wait(check, server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                log = server.log_path.read_text()[-2000:] if server.log_path else ""
                raise RuntimeError(f"{server.name} exited at start-up:\n{log}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.1)
    except BaseException:  # Ctrl-C while starting: no orphan server left behind
        server.stop()
        raise
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready on port {server.port} in {timeout}s")


def _spawn(
    args: list[str], log_path: Path | None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        args,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped with everything it started
        env={**os.environ, **(env or {})},
    )


def start_mongo(
    port: int | None = None,
    storage_path: str | Path = ":memory:",
    *,
    auth: bool = False,
    log_path: Path | None = None,
    extra_args: list[str] | None = None,
    timeout: float = 60,
) -> ServerProcess:
    """SecantusDB (secantusd-py), test commands enabled for configureFailPoint."""
    if port is None:
        return _on_a_free_port(
            lambda p: start_mongo(
                p,
                storage_path,
                auth=auth,
                log_path=log_path,
                extra_args=extra_args,
                timeout=timeout,
            )
        )
    _require_free(port, "the embedded MongoDB (SecantusDB)", "AUDIT_DEV_MONGO_PORT")
    if storage_path != ":memory:":
        Path(storage_path).mkdir(parents=True, exist_ok=True)
    args = [
        _bin("secantusd-py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(storage_path),
        "--enable-test-commands",
        "--log-level",
        "WARNING",
    ]
    if auth:
        args.append("--auth")
    args += extra_args or []
    server = ServerProcess("SecantusDB", port, _spawn(args, log_path), log_path)

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
        from pymongo import MongoClient

        client = MongoClient(
            port=port, host="127.0.0.1", serverSelectionTimeoutMS=1000, directConnection=True
        )
        try:
            try:
                client.admin.command("ping")
            except Exception as e:  # with --auth, an auth error still proves it is up
                if "auth" not in str(e).lower():
                    raise
            return True
        finally:
            client.close()

    _wait(ready, server, timeout)
    return server


def start_s3(
    port: int | None = None,
    *,
    log_path: Path | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """moto's S3 server (moto_server), path-style like MinIO. ``env``: extra variables for
    the server (e.g. MOTO_RECORDER_FILEPATH, see s3_persist.py)."""
    if port is None:
        return _on_a_free_port(lambda p: start_s3(p, log_path=log_path, timeout=timeout, env=env))
    _require_free(port, "the embedded S3 server (moto)", "AUDIT_DEV_S3_PORT")
    server = ServerProcess(
        "moto S3",
        port,
        _spawn([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_path, env),
        log_path,
    )

    def ready() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1) as r:
            return r.status == 200

    _wait(ready, server, timeout)
    return server


@dataclass
class Stack:
    """Both embedded servers, and the environment that points the archive at them."""

    mongo: ServerProcess
    s3: ServerProcess
    servers: list[ServerProcess] = field(default_factory=list)

    @property
    def mongo_uri_base(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo.port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3.port}"

    def env(self, database: str = "dezky", bucket: str = "dezky-audit") -> dict[str, str]:
        return {
            "MONGODB_URI": f"{self.mongo_uri_base}/{database}?directConnection=true",
            "AUDIT_COLD_ENDPOINT": self.s3_endpoint,
            "AUDIT_COLD_BUCKET": bucket,
            "AUDIT_COLD_REGION": "us-east-1",
            "AUDIT_COLD_ACCESS_KEY": S3_ACCESS_KEY,
            "AUDIT_COLD_SECRET_KEY": S3_SECRET_KEY,
        }

    def stop(self) -> None:
        for server in (self.mongo, self.s3):
            server.stop()


def start_stack(
    mongo_port: int | None = None,
    s3_port: int | None = None,
    storage_path: str | Path = ":memory:",
    log_dir: Path | None = None,
) -> Stack:
    mongo = start_mongo(
        mongo_port, storage_path, log_path=log_dir / "secantus.log" if log_dir else None
    )
    try:
        s3 = start_s3(s3_port, log_path=log_dir / "moto.log" if log_dir else None)
    except BaseException:
        mongo.stop()
        raise
    return Stack(mongo, s3)


def s3_client(endpoint: str, *, checksums_when_required: bool = False):
    """A boto3 client of the embedded S3 server (path-style, its demo credentials): the one
    way tests, the demo and the benchmarks talk to it. ``checksums_when_required``: send
    and check no checksum unless an operation needs one, as tools that copy buckets do."""
    import boto3
    from botocore.config import Config

    extra = (
        {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        if checksums_when_required
        else {}
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, **extra),
    )


def create_bucket(endpoint: str, bucket: str, *, object_lock: bool = False) -> None:
    s3 = s3_client(endpoint)
    with contextlib.suppress(
        s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists
    ):
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=object_lock)

"""Helpers shared by the reliability and security tests (issue 7): custom chained
events, run outcomes, a checksum-verifying S3 server and the fault proxy fixtures."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from bson import ObjectId

from audit_archive.format.canonical import event_hash
from audit_archive_dev import seed
from audit_archive_dev.embedded import ServerProcess, create_bucket, free_port
from audit_archive_tests.support.harness import Harness, s3_client

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def append_events(
    harness: Harness,
    ats: Iterable[dt.datetime],
    payload: Callable[[int], dict[str, Any]] = lambda i: {},
    *,
    insert: bool = True,
) -> list[dict[str, Any]]:
    """Chained events continuing the harness's chain, each with ``payload(i)`` merged
    into a realistic body before hashing (so the chain stays intact)."""
    first_seq, prev_hash = harness._tail()
    docs = []
    for i, at in enumerate(ats):
        doc = {
            "_id": ObjectId(),
            **seed.make_body(harness.rng, at, first_seq + i),
            **payload(i),
            "prevHash": prev_hash,
        }
        doc["hash"] = event_hash(doc)
        prev_hash = doc["hash"]
        docs.append(doc)
    if insert:
        for doc in docs:  # one by one: big documents stay under the message size limit
            harness.events.insert_one(doc)
    harness.seeded += docs
    return docs


def random_text(harness: Harness, n_bytes: int) -> str:
    """Incompressible ASCII of about ``n_bytes`` (base64 of random bytes): gzip keeps
    about three quarters of it, so a few of these make a multi-part upload."""
    return base64.b64encode(harness.rng.randbytes(n_bytes * 3 // 4)).decode()


def op_name(step_key: str | None) -> str | None:
    """The op of a step: steps of the graph-backed cold_archive asset are keyed
    ``cold_archive.<op>``."""
    return step_key.rsplit(".", 1)[-1] if step_key else step_key


def step_events(result: Any, event_type: str) -> list[str]:
    """The ops of a run result's events of one type (e.g. "STEP_SUCCESS")."""
    return [op_name(e.step_key) for e in result.all_events if e.event_type_value == event_type]


def failure_messages(result: Any) -> str:
    """Every failure message of a Dagster run result, joined (what the UI shows)."""
    out = []
    for e in result.all_events:
        if not e.is_failure:
            continue
        error = getattr(e.event_specific_data, "error", None) if e.event_specific_data else None
        if error is None:
            out.append(str(e.message))
        while error is not None:  # a resource's error is the cause of Dagster's own
            out.append(str(error.message))
            error = error.cause
    return "\n".join(out)


def all_run_text(result: Any) -> str:
    """Every message and metadata value the run produced (to look for secrets)."""
    out = []
    for e in result.all_events:
        out.append(str(e.message))
        data = e.event_specific_data
        if data is not None:
            out.append(repr(data))
    return "\n".join(out)


def start_strict_s3(log_path: Path | None = None) -> ServerProcess:
    """moto's S3 server with S3's BadDigest check (see strict_s3.py), own process."""
    import time
    import urllib.request

    port = free_port()
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audit_archive_tests.support.strict_s3",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    server = ServerProcess("strict S3", port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("strict S3 server exited at start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("strict S3 server did not start")


def use_s3_endpoint(harness: Harness, monkeypatch: Any, endpoint: str, archive_url: str) -> None:
    """Point the harness's reads at ``endpoint`` and the archive at ``archive_url``."""
    create_bucket(endpoint, harness.bucket)
    harness.s3 = s3_client(endpoint)
    harness.env["AUDIT_COLD_ENDPOINT"] = archive_url
    monkeypatch.setenv("AUDIT_COLD_ENDPOINT", archive_url)


def day_of(events: Iterable[dict[str, Any]], day: dt.date) -> list[dict[str, Any]]:
    return [e for e in events if isinstance(e.get("at"), dt.datetime) and e["at"].date() == day]


def iter_days(first: dt.date, count: int) -> Iterator[dt.date]:
    for i in range(count):
        yield first + dt.timedelta(days=i)


def start_secure_mongo(
    workdir: Path,
    users: dict[str, tuple[str, list[Any]]],
    database: str,
    roles: dict[str, list[dict[str, Any]]] | None = None,
) -> tuple[ServerProcess, Path]:
    """SecantusDB with SCRAM and TLS (certificates made here with trustme).

    As secantusd-py --help says: start without --auth, create the roles (name ->
    privileges, in ``database``) and the users (name -> (password, roles)), stop, and
    start again (same storage) with --auth and the TLS files. Returns the server and the
    CA file clients must trust."""
    import time

    import trustme
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    storage = workdir / "data"
    binary = str(Path(sys.executable).parent / "secantusd-py")

    def spawn(port: int, *extra: str) -> ServerProcess:
        args = [binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path"]
        args += [str(storage), "--log-level", "WARNING", *extra]
        log = open(workdir / "secantus.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return ServerProcess("SecantusDB (auth, TLS)", port, process, workdir / "secantus.log")

    def wait_ready(server: ServerProcess, **tls: Any) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError((workdir / "secantus.log").read_text()[-2000:])
            client = MongoClient(
                host="127.0.0.1",
                port=server.port,
                directConnection=True,
                serverSelectionTimeoutMS=500,
                **tls,
            )
            try:
                client.admin.command("ping")
                return
            except OperationFailure:  # auth required: it is up
                return
            except Exception:
                time.sleep(0.1)
            finally:
                client.close()
        server.stop()
        raise RuntimeError("the secure SecantusDB did not start")

    port = free_port()
    plain = spawn(port)
    try:
        wait_ready(plain)
        client = MongoClient(host="127.0.0.1", port=port, directConnection=True)
        for role, privileges in (roles or {}).items():
            client[database].command("createRole", role, privileges=privileges, roles=[])
        for user, (password, granted) in users.items():
            client.admin.command("createUser", user, pwd=password, roles=granted)
        client.close()
    finally:
        plain.stop()
    secure = spawn(
        port, "--auth", "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)
    )
    wait_ready(secure, tls=True, tlsCAFile=str(ca_file))
    return secure, ca_file


def secure_uri(server: ServerProcess, ca_file: Path, user: str, password: str, db: str) -> str:
    return (
        f"mongodb://{user}:{password}@127.0.0.1:{server.port}/{db}"
        f"?authSource=admin&tls=true&tlsCAFile={ca_file}&directConnection=true"
    )


def run_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start every call on its own thread at the same moment; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as e:  # surfaced by the assertions below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results

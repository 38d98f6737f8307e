"""Real servers for the whole session: SecantusDB (MongoDB wire protocol) and moto's S3
server, each in its own process on a loopback port. Each test gets its own database
and bucket, and its environment points the archive at them."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from audit_archive_dev.embedded import Stack, create_bucket, start_stack
from audit_archive_tests.support.harness import KEY_A, RETENTION, Harness, s3_client

_counter = itertools.count(1)

# The code location validates the run-time variables when it loads; test modules may
# import it at collection time, before a harness sets the per-test environment.
os.environ.setdefault("AUDIT_SIGNING_KEY", KEY_A)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("server-logs")
    servers = start_stack(log_dir=logs)
    yield servers
    servers.stop()


@pytest.fixture(scope="session")
def mongo_client(stack: Stack) -> Iterator[MongoClient]:
    client = MongoClient(stack.mongo_uri_base, directConnection=True, tz_aware=True)
    yield client
    client.close()


def point_archive_at(
    stack: Stack,
    mongo_client: MongoClient,
    mp: pytest.MonkeyPatch,
    name: str,
    work_dir: str,
    **extra: str,
) -> Harness:
    """Point the archive's environment at a fresh database and bucket called ``name``:
    every AUDIT_/ARCHIVE_ variable cleared, then the test's set through ``mp``."""
    env = {
        **stack.env(database=f"db{name}", bucket=f"b-{name}"),
        "AUDIT_SIGNING_KEY": KEY_A,
        "AUDIT_HOT_RETENTION_DAYS": str(RETENTION),
        "AUDIT_WORK_DIR": work_dir,
        "AUDIT_LEASE_SECONDS": "10",
        **extra,
    }
    for variable in list(os.environ):
        if variable.startswith(("AUDIT_", "ARCHIVE_")) or variable == "MONGODB_URI":
            mp.delenv(variable)
    for variable, value in env.items():
        mp.setenv(variable, value)
    create_bucket(stack.s3_endpoint, env["AUDIT_COLD_BUCKET"])
    return Harness(env, mongo_client, s3_client(stack.s3_endpoint))


@pytest.fixture
def harness(
    stack: Stack, mongo_client: MongoClient, monkeypatch: pytest.MonkeyPatch, request, tmp_path
) -> Iterator[Harness]:
    """A fresh database and bucket, with the archive's environment pointing at them."""
    name = re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:30] or "t"
    h = point_archive_at(
        stack, mongo_client, monkeypatch, f"{name}{next(_counter)}", str(tmp_path / "work")
    )
    yield h
    mongo_client.drop_database(h.settings.database)

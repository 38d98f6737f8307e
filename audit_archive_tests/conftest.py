"""Real servers for the whole session: SecantusDB (MongoDB wire protocol) and moto's S3
server, each in its own process on a loopback port. Each test gets its own database
and bucket, and its environment points the archive at them."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from pymongo import MongoClient

from audit_archive_dev.embedded import Stack, start_stack
from audit_archive_tests.support.harness import KEY_A, Harness, point_archive_at

if TYPE_CHECKING:  # importing it loads the code location, which needs the key set below
    from audit_archive_tests.support.verify_archive import Template

_counter = itertools.count(1)

# The code location validates the run-time variables when it loads; test modules may
# import it at collection time, before a harness sets the per-test environment.
os.environ.setdefault("AUDIT_SIGNING_KEY", KEY_A)
# The definitions bind the connection variables set when they load with EnvVar (read again
# when each run starts, from the test's environment); one unset at load would keep its
# default, and a run pointed elsewhere by a test would then be refused as a mismatch.
for _variable, _placeholder in {
    "MONGODB_URI": "mongodb://127.0.0.1:1/unset",
    "AUDIT_COLD_ENDPOINT": "http://127.0.0.1:1",
    "AUDIT_COLD_REGION": "us-east-1",
    "AUDIT_COLD_ACCESS_KEY": "unset",
    "AUDIT_COLD_SECRET_KEY": "unset",
}.items():
    os.environ.setdefault(_variable, _placeholder)


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


@pytest.fixture
def archive_factory(
    stack: Stack, mongo_client: MongoClient, monkeypatch: pytest.MonkeyPatch, request, tmp_path
) -> Iterator[Callable[..., Harness]]:
    """A fresh database and bucket on every call (for hypothesis, whose examples share
    one test's fixtures), the archive's environment pointing at the newest; extra
    variables as keyword arguments. Every database made is dropped afterwards."""
    made: list[Harness] = []
    stem = re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:24] or "t"

    def new(**extra: str) -> Harness:
        n = next(_counter)
        h = point_archive_at(
            stack, mongo_client, monkeypatch, f"{stem}{n}", str(tmp_path / f"work{n}"), **extra
        )
        made.append(h)
        return h

    yield new
    for h in made:
        mongo_client.drop_database(h.settings.database)


@pytest.fixture(scope="module")
def template(stack: Stack, mongo_client: MongoClient, tmp_path_factory) -> Iterator[Template]:
    """The verify tests' archive, built once per test module by the real archive job."""
    from audit_archive_tests.support.verify_archive import build_template  # loads defs

    yield from build_template(stack, mongo_client, tmp_path_factory)


@pytest.fixture
def archive(harness: Harness, template: Template, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """The template archive loaded into this test's database and bucket."""
    from audit_archive_tests.support.verify_archive import load_template

    return load_template(harness, template, monkeypatch)

"""`audit-archive archives` says MongoDB is unreachable as fast as every other command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pymongo
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from audit_archive.cli import main
from audit_archive.stores.clients import MONGO_TIMEOUT_MS
from audit_archive.stores.database import HotDatabase


def test_an_unreachable_mongodb_is_reported_within_the_start_up_limit(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # The first call to MongoDB runs under the start-up check's deadline (5 s), not
    # pymongo's 30 s server selection; an unreachable server is a configuration error.
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unreachable")
    real_timeout = pymongo.timeout
    deadline: list[float] = []  # the innermost pymongo.timeout in force
    seen: list[float | None] = []

    @contextlib.contextmanager
    def timeout(seconds: float) -> Iterator[None]:
        deadline.append(seconds)
        try:
            with real_timeout(seconds):
                yield
        finally:
            deadline.pop()

    def ping(self: HotDatabase) -> None:
        seen.append(deadline[-1] if deadline else None)
        raise ServerSelectionTimeoutError("127.0.0.1:1: connection refused")

    monkeypatch.setattr(pymongo, "timeout", timeout)
    monkeypatch.setattr(HotDatabase, "ping", ping)

    assert main(["archives"]) == 2

    assert seen == [MONGO_TIMEOUT_MS / 1000]
    err = capsys.readouterr().err
    assert "MONGODB_URI" in err and "MongoDB is not reachable" in err

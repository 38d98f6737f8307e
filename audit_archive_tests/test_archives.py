"""`audit-archive archives` says MongoDB is unreachable as fast as every other command."""

from __future__ import annotations

import pytest
from pymongo import _csot
from pymongo.errors import ServerSelectionTimeoutError

from audit_archive.cli import main
from audit_archive.stores.clients import MONGO_TIMEOUT_MS
from audit_archive.stores.hot import HotStore


def test_an_unreachable_mongodb_is_reported_within_the_start_up_limit(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # The first call to MongoDB runs under the start-up check's deadline (5 s), not
    # pymongo's 30 s server selection; an unreachable server is a configuration error.
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "k" * 40)
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unreachable")
    deadlines: list[float | None] = []

    def ping(self: HotStore) -> None:
        deadlines.append(_csot.get_timeout())
        raise ServerSelectionTimeoutError("127.0.0.1:1: connection refused")

    monkeypatch.setattr(HotStore, "ping", ping)

    assert main(["archives"]) == 2

    assert deadlines == [MONGO_TIMEOUT_MS / 1000]
    err = capsys.readouterr().err
    assert "MONGODB_URI" in err and "MongoDB is not reachable" in err

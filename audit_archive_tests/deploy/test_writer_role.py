"""The producing application's MongoDB role (deploy/mongo/writer-role.json, created by
deploy/mongo/create-archive-user.js in the bundled mongo): it appends events and reads
them, and can change or delete none; the archive's own role cannot write events.

The actions are checked on SecantusDB with authentication, the roles created from the
deployment's JSON files. SecantusDB enforces a role's actions but not the collection of
its resource (a role with `find` on one collection reads every collection of the
database, measured while writing this test), so which collections each role names is
checked on the JSON itself."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from audit_archive_tests.support.deploy_files import REPO
from audit_archive_tests.support.reliability import secure_uri, start_secure_mongo

DATABASE, EVENTS, BATCHES = "dezky", "auditevents", "archivebatches"
UNAUTHORIZED = 13


def role(file: str) -> tuple[str, list[dict[str, Any]]]:
    spec = json.loads((REPO / "deploy" / "mongo" / file).read_text())
    privileges = [
        {
            "resource": {
                "db": DATABASE,
                "collection": p["collection"]
                .replace("{events}", EVENTS)
                .replace("{batches}", BATCHES),
            },
            "actions": p["actions"],
        }
        for p in spec["privileges"]
    ]
    return spec["role"], privileges


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, MongoClient]]:
    workdir = tempfile.mkdtemp(prefix="audit-writer-role-")
    writer, archive = role("writer-role.json"), role("archive-role.json")
    users = {
        "writer": ("Wr1ter-pass", [{"role": writer[0], "db": DATABASE}]),
        "archiver": ("Arch1ver-pass", [{"role": archive[0], "db": DATABASE}]),
        "admin": ("adm1n-pass", ["root"]),
    }
    from pathlib import Path

    server, ca = start_secure_mongo(Path(workdir), users, DATABASE, dict([writer, archive]))
    out = {
        name: MongoClient(secure_uri(server, ca, name, password, DATABASE), tz_aware=True)
        for name, (password, _) in users.items()
    }
    yield out
    for client in out.values():
        client.close()
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def refused(call) -> bool:
    try:
        call()
    except OperationFailure as e:
        return e.code == UNAUTHORIZED
    return False


def test_the_writer_appends_and_reads_events_and_changes_none(clients) -> None:
    events = clients["writer"][DATABASE][EVENTS]
    events.insert_one({"_id": "w1", "seq": 1, "hash": "h1"})
    assert events.find_one({"_id": "w1"})["hash"] == "h1", "reads the chain's tail"
    assert refused(lambda: events.update_one({"_id": "w1"}, {"$set": {"hash": "x"}}))
    assert refused(lambda: events.replace_one({"_id": "w1"}, {"seq": 1}))
    assert refused(lambda: events.delete_one({"_id": "w1"}))
    assert refused(lambda: events.drop())
    assert events.count_documents({"_id": "w1", "hash": "h1"}) == 1, "unchanged"


def test_the_archive_purges_events_the_writer_wrote(clients) -> None:
    clients["writer"][DATABASE][EVENTS].insert_one({"_id": "a2", "seq": 3})
    events = clients["archiver"][DATABASE][EVENTS]
    assert events.delete_one({"_id": "a2"}).deleted_count == 1, "the purge"


def test_each_role_names_only_the_collections_it_needs() -> None:
    _, writer = role("writer-role.json")
    assert [p["resource"]["collection"] for p in writer] == [EVENTS]
    assert not {"update", "remove", "dropCollection"} & set(writer[0]["actions"])
    _, archive = role("archive-role.json")
    on_events = next(p for p in archive if p["resource"]["collection"] == EVENTS)
    assert not {"insert", "update"} & set(on_events["actions"]), "never writes events"

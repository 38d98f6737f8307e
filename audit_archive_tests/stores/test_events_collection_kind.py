"""An events collection the purge cannot delete from (time-series, view, capped) is
refused at start-up, named, with AUDIT_EVENTS_COLLECTION: not at the first purge with a
server error after the day was uploaded."""

from __future__ import annotations

import pytest

from audit_archive.errors import ConfigError
from audit_archive.settings import Settings
from audit_archive.stores.clients import check_stores, open_stores
from audit_archive.stores.collection_kind import no_transactions, unsupported_events_collection
from audit_archive.stores.privileges import Access
from audit_archive_tests.support.harness import Harness, due_day

# listCollections entries as MongoDB 7.0 returns them (type, options).
TIMESERIES = {
    "name": "auditevents",
    "type": "timeseries",
    "options": {"timeseries": {"timeField": "at", "granularity": "seconds"}},
}
VIEW = {"name": "auditevents", "type": "view", "options": {"viewOn": "raw", "pipeline": []}}
CAPPED = {"name": "auditevents", "type": "collection", "options": {"capped": True, "size": 4096}}
PLAIN = {"name": "auditevents", "type": "collection", "options": {}}


@pytest.mark.parametrize(
    ("info", "named"),
    [(TIMESERIES, "time-series"), (VIEW, "a view (on 'raw')"), (CAPPED, "capped")],
    ids=["timeseries", "view", "capped"],
)
def test_collections_the_purge_cannot_delete_from_are_named(info, named) -> None:
    reason = unsupported_events_collection("auditevents", info)
    assert reason is not None and named in reason and "'auditevents'" in reason


@pytest.mark.parametrize(
    "info", [PLAIN, None, {"name": "auditevents"}], ids=["plain", "absent", "no-type"]
)
def test_a_plain_or_not_yet_created_collection_is_fine(info) -> None:
    assert unsupported_events_collection("auditevents", info) is None


def _make(harness: Harness, kind: str) -> None:
    name = harness.settings.events_collection
    if kind == "capped":
        harness.db.create_collection(name, capped=True, size=1 << 20)
    elif kind == "time-series":
        harness.db.create_collection(name, timeseries={"timeField": "at", "metaField": "actor"})
    else:  # a view over where the application really writes
        harness.db.command({"create": name, "viewOn": "raw_events", "pipeline": []})


@pytest.mark.parametrize("kind", ["time-series", "capped", "view"])
def test_start_up_refuses_an_events_collection_the_purge_cannot_delete_from(
    harness: Harness, kind: str
) -> None:
    # Made on the server, read back through the real listCollections (SecantusDB keeps
    # a time-series collection's options as MongoDB does; its `type` says "collection").
    _make(harness, kind)
    with pytest.raises(ConfigError, match=f"AUDIT_EVENTS_COLLECTION.*{kind.split('-')[0]}"):
        check_stores(open_stores(harness.settings, check=False))


def test_start_up_accepts_the_plain_collection_and_readers_never_ask(harness: Harness) -> None:
    harness.seed({due_day(2): 3})
    check_stores(open_stores(harness.settings, check=False))
    harness.db.drop_collection(harness.settings.events_collection)
    harness.db.create_collection(harness.settings.events_collection, capped=True, size=1 << 20)
    # verify, search, prove and restore only read the events: no refusal for them.
    check_stores(open_stores(harness.settings, check=False), Access.READ)


@pytest.mark.parametrize(
    ("hello", "refused"),
    [
        ({"isWritablePrimary": True}, True),  # a standalone mongod
        ({"isWritablePrimary": True, "setName": "rs0"}, False),
        ({"isWritablePrimary": True, "msg": "isdbgrid"}, False),  # a mongos
    ],
)
def test_only_servers_with_transactions_can_run_the_fenced_writes(hello, refused) -> None:
    assert (no_transactions(hello) is not None) is refused


def test_start_up_names_a_standalone_server_before_anything_is_uploaded(
    harness: Harness, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real standalone server (SecantusDB without a replica set name): the archive
    # refuses at start-up, naming MONGODB_URI, instead of failing at its first record.
    from secantus import SecantusDBServer

    standalone = SecantusDBServer(storage_path=str(tmp_path / "standalone"), replica_set_name=None)
    standalone.start()
    try:
        monkeypatch.setenv("MONGODB_URI", f"{standalone.uri.rstrip('/')}/standalone")
        settings = Settings.read()
        with pytest.raises(ConfigError, match=r"MONGODB_URI.*standalone.*replica set"):
            check_stores(open_stores(settings, check=False))
        # Readers never write in transactions: they may read a standalone server.
        check_stores(open_stores(settings, check=False), Access.READ)
    finally:
        standalone.stop()

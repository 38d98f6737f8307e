"""Which kinds of MongoDB collection the archive can move events out of.

The purge deletes archived events by ``_id`` inside transactions. MongoDB refuses that, or
refuses it only at the first delete, on some collection kinds: a time-series collection
(deletes limited to metaField filters before 7.0, no multi-document transactions), a
view (read-only), a capped collection (no deletes at all). Start-up names the kind from
``listCollections`` instead of letting the first purge fail with a server error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from audit_archive.stores.privileges import UNAUTHORIZED


def events_collection_problem(events: Collection) -> str | None:
    """Why ``events`` cannot be archived from, read from the server's ``listCollections``,
    or None. None too for a user without ``listCollections``, who cannot be told (the
    deployment's role, deploy/mongo/archive-role.json, grants it)."""
    try:
        infos = list(events.database.list_collections(filter={"name": events.name}))
    except OperationFailure as e:
        if e.code == UNAUTHORIZED:
            return None
        raise
    return unsupported_events_collection(events.name, infos[0] if infos else None)


def unsupported_events_collection(name: str, info: Mapping[str, Any] | None) -> str | None:
    """Why the events collection ``name`` (its ``listCollections`` entry, or None when it
    does not exist yet) cannot be archived from, or None when it can."""
    if info is None:
        return None  # created by the application's first insert: a plain collection
    kind = info.get("type", "collection")
    options = info.get("options") or {}
    if kind == "timeseries" or "timeseries" in options:
        reason = "a time-series collection"
    elif kind == "view" or "viewOn" in options:
        reason = f"a view (on '{options.get('viewOn', '?')}'), which is read-only"
    elif options.get("capped"):
        reason = "a capped collection, from which MongoDB deletes nothing"
    elif kind != "collection":
        reason = f"of type '{kind}'"
    else:
        return None
    return (
        f"collection '{name}' is {reason}: the archive deletes archived events by _id "
        "inside transactions, which needs a plain (replicated) collection. Point "
        "AUDIT_EVENTS_COLLECTION at the application's plain events collection"
    )


def transactions_problem(client: MongoClient) -> str | None:
    """Why the server behind ``client`` cannot run the archive's fenced writes, or None:
    asked once at start-up (``hello``), so a standalone server is named before anything
    is uploaded instead of at the first record."""
    return no_transactions(client.admin.command("hello"))


def no_transactions(hello: Mapping[str, Any]) -> str | None:
    """Why a server that answered ``hello`` so offers no multi-document transactions, or
    None: a replica set member (``setName``) or a mongos (``msg: isdbgrid``) does."""
    if hello.get("setName") or hello.get("msg") == "isdbgrid":
        return None
    return (
        "the server is a standalone MongoDB: recording, logging and purging are fenced by "
        "the day's lease in multi-document transactions, which need a replica set (a "
        "single-node replica set will do: mongod --replSet rs0, then rs.initiate()) or a "
        "sharded cluster. Nothing was changed"
    )

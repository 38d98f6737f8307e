"""What the hot database's user may do, found out at start-up (issue 11).

A user without a privilege a run needs (``remove`` on the events for the purge, ``insert``
on the batch records) would otherwise fail in the middle of a run, after the upload. So
the start-up check asks the server, collection by collection, for every action the use
at hand needs, and names what is missing.

It asks by sending each command in a form the server authorizes first and then finds
nothing to do with: a delete or update whose filter matches no document (an equality on a
fresh ObjectId, and a field value no document of the archive has), an insert of a
document every server refuses as invalid (an ``_id`` with a ``$`` field), a createIndex
of an index type that does not exist. ``Unauthorized`` (code 13) means missing; any other
answer means allowed. ``connectionStatus`` with ``showPrivileges`` would say the same
without a command, but not every server fills it in (SecantusDB answers an empty list),
and the probes work on every server that enforces privileges at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from bson import ObjectId
from bson.min_key import MinKey
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

UNAUTHORIZED = 13


class Access(StrEnum):
    """What a process does with the hot database, and so which privileges it needs."""

    READ = "read"  # verify, search, prove, archives, restore's reading side
    ARCHIVE = "archive"  # the archive job (extract, record, purge, leases) and `check`


def required_actions(
    access: Access, events: str, batches: str, leases: str, log: str | None = None
) -> dict[str, tuple[str, ...]]:
    """Collection -> the actions ``access`` needs on it (the commands the stores of
    stores/ send; deploy/mongo/archive-role.json grants at least these).
    ``log``: the signed log's collection, when the log is on."""
    if access is Access.READ:
        required = {events: ("find",), batches: ("find",), leases: ("find",)}
        if log is not None:
            required[log] = ("find",)
        return required
    required = {
        # createIndex only while an index is missing (HotDatabase.missing_privileges).
        events: ("find", "remove", "listIndexes", "createIndex"),
        batches: ("find", "insert", "update", "createIndex"),
        leases: ("find", "insert", "update", "remove"),
    }
    if log is not None:
        required[log] = ("find", "insert", "createIndex")
    return required


def _nothing() -> dict[str, Any]:
    """A filter no document matches, found through the _id index: a fresh ObjectId, and
    a MinKey ``seq``/``day`` that no event, batch record or lease has."""
    return {"_id": ObjectId(), "seq": MinKey(), "day": MinKey()}


def _insert(collection: Collection) -> None:
    refused = {"_id": {"$probe": 1}}  # "_id fields may not contain '$'-prefixed fields"
    try:
        collection.insert_one(refused)
    except OperationFailure as e:
        if e.code == UNAUTHORIZED:
            raise
        return
    collection.delete_one({"_id": refused["_id"]})  # a server that took it: take it back


_PROBES: dict[str, Callable[[Collection], Any]] = {
    "find": lambda c: c.find_one({"_id": None}, {"_id": 1}),
    "remove": lambda c: c.delete_one(_nothing()),
    "update": lambda c: c.update_one(_nothing(), {"$set": {"probe": 1}}),
    "insert": _insert,
    "createIndex": lambda c: c.create_index(
        [("probe", "no-such-index-type")], name="audit_archive_privilege_probe"
    ),
    "listIndexes": lambda c: list(c.list_indexes()),
}


def allowed(collection: Collection, action: str) -> bool:
    """Whether the server lets this user do ``action`` on ``collection``."""
    try:
        _PROBES[action](collection)
    except OperationFailure as e:
        if e.code == UNAUTHORIZED:
            return False
    return True


def missing_actions(
    collections: Mapping[str, Collection], required: Mapping[str, Sequence[str]]
) -> list[str]:
    """``"remove, update on db.coll"`` for every collection some required action of
    which the user lacks, in the order required."""
    out = []
    for name, actions in required.items():
        collection = collections[name]
        lacking = [a for a in actions if not allowed(collection, a)]
        if lacking:
            out.append(f"{', '.join(lacking)} on {collection.full_name}")
    return out

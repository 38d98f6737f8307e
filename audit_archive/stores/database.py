"""The hot MongoDB database as a whole: its connection, and what its user may do.

The collections' roles have their own modules (stores.events, stores.batches,
stores.leasestore, stores.logstore, stores.restore_target); this one holds what concerns
the database itself: reachability, authentication and privileges, checked at start-up
(stores.clients, stores.privileges).
"""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from audit_archive.format.canonical import EVENT_CODEC_OPTIONS
from audit_archive.stores.batches import BatchStore
from audit_archive.stores.events import EventStore
from audit_archive.stores.leasestore import LeaseStore
from audit_archive.stores.logstore import LogStore
from audit_archive.stores.privileges import Access, missing_actions, required_actions
from audit_archive.stores.restore_target import RestoreTarget


class HotDatabase:
    """The connection to the hot database, and the collections of each role in it."""

    def __init__(self, client: MongoClient, database: str, events: str, batches: str) -> None:
        self.client = client
        self.db: Database = client.get_database(database, codec_options=EVENT_CODEC_OPTIONS)
        self.leases = LeaseStore(self.db[f"{batches}_leases"])
        self.events = EventStore(self.db[events], self.leases)
        self.batches = BatchStore(self.db[batches], self.leases)
        self.log = LogStore(self.db, batches)
        self.restore_target = RestoreTarget(self.db)

    def ping(self) -> None:
        self.client.admin.command("ping")

    def close(self) -> None:
        self.client.close()

    def authenticated(self) -> bool:
        """Whether this connection is authenticated as some user (connectionStatus)."""
        status = self.db.command("connectionStatus")
        return bool((status.get("authInfo") or {}).get("authenticatedUsers"))

    def missing_privileges(self, access: Access, *, signed_log: bool = False) -> list[str]:
        """What the user lacks for ``access`` (with the signed log's collection when the
        log is on), as ``"remove on db.auditevents"`` lines; empty when it has everything
        (or the server enforces no privileges)."""
        events, batches = self.events.collection, self.batches.collection
        leases, log = self.leases.leases, self.log.leaves
        names = (events.name, batches.name, leases.name)
        required = required_actions(access, *names, log.name if signed_log else None)
        if access is Access.ARCHIVE and self.events.indexes_present():
            # ensure_indexes creates none: createIndex on the events is not needed.
            required[events.name] = tuple(a for a in required[events.name] if a != "createIndex")
        collections = {c.name: c for c in (events, batches, leases, log)}
        return missing_actions(collections, required)

    def ensure_indexes(self) -> None:
        """The indexes the archive's queries and its exactly-once rule need, on the events
        and the batch records (each store says which). Idempotent."""
        self.events.ensure_indexes()
        self.batches.ensure_indexes()

"""Leases and fencing in MongoDB: who may change a day (or the signed log) right now.

A lease is one document in ``<batches>_leases`` (``_id``: the day, or ``signed-log``)
naming its owner (the run), host, pid, expiry and a **fencing token**: a random value made
anew every time the lease is taken (first claim, take-over of an expired lease, or a
re-claim by the same owner). A renewal only extends a lease whose owner *and* token still
match, so a run that stalled past its expiry and was taken over cannot renew it again.

Every write that must not come from a run that lost its lease (recording a part,
appending to the signed log, deleting from hot) is made *fenced*: inside one MongoDB
transaction that first updates the lease document matching owner and token (extending its
expiry) and then makes the write. A take-over is an update of the same document, so the
two conflict: either the take-over commits first and the fenced update matches nothing
(the write is not made, ``LeaseLost``), or the fenced transaction commits first and the
take-over's filter (the old expiry) no longer matches, so the other run sees a live lease
and waits. The token is compared for equality against the live document, never stored
in the data it protects, so it needs to be unique, not ordered.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, OperationFailure

from audit_archive.errors import LeaseLost, NoTransactions
from audit_archive.format.layout import format_day

T = TypeVar("T")
_ILLEGAL_OPERATION = 20  # "Transaction numbers are only allowed on a replica set member"


def lease_id(lease: dt.date | str) -> str:
    """The lease document's ``_id``: a day's key (``YYYY-MM-DD``), or the name of a
    lease that is not a day's (``signed-log``)."""
    return lease if isinstance(lease, str) else format_day(lease)


@dataclass(frozen=True)
class Lease:
    day: str
    owner: str
    host: str
    pid: int
    expires_at: dt.datetime
    token: str = ""
    # When its holder took it (kept while the same run renews or re-takes it): readers
    # judge whether a run could still hold it (verify: hot_checks.implausible_lease).
    acquired_at: dt.datetime | None = None


@dataclass(frozen=True)
class Fence:
    """What a fenced write checks: this lease, held by this owner under this token.
    ``seconds``: how far a fenced write extends the lease (the lease time)."""

    lease_id: str
    owner: str
    token: str
    seconds: int


class LeaseStore:
    """The leases collection (``<batches>_leases``): who holds each day, and fenced
    writes that commit only while the lease is still held."""

    def __init__(self, leases: Collection) -> None:
        self.leases = leases
        self.client: MongoClient = leases.database.client

    def acquire_lease(self, lease: dt.date | str, owner: str, seconds: int) -> Lease:
        """Take the day's lease, or return the holder's lease if someone else has it.

        A lease whose holder died on this host (pid gone) is taken over at once; one held
        elsewhere is taken over when it expires (the holder renews it while working).
        Every successful claim gets a new fencing token.
        """
        day = lease_id(lease)
        now = dt.datetime.now(dt.UTC)
        mine: dict[str, Any] = {
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": uuid.uuid4().hex,
        }
        expires = now + dt.timedelta(seconds=seconds)
        current = self.leases.find_one({"_id": day})
        takeover = current is not None and (
            current["owner"] == owner
            or current["expiresAt"] <= now
            or (current.get("host") == mine["host"] and not pid_alive(current.get("pid")))
        )
        if current is None or current["owner"] != owner or "acquiredAt" not in current:
            mine["acquiredAt"] = now  # the same run taking it again keeps its first time
        try:
            if current is None:
                self.leases.insert_one({"_id": day, **mine, "expiresAt": expires})
            elif takeover:
                res = self.leases.update_one(
                    {"_id": day, "owner": current["owner"], "expiresAt": current["expiresAt"]},
                    {"$set": {**mine, "expiresAt": expires}},
                )
                if res.matched_count != 1:
                    return self._lease(self.leases.find_one({"_id": day}))
            else:
                return self._lease(current)
        except DuplicateKeyError:
            return self._lease(self.leases.find_one({"_id": day}))
        return Lease(
            day,
            owner,
            mine["host"],
            mine["pid"],
            expires,
            mine["token"],
            acquired_at=mine.get("acquiredAt") or (current or {}).get("acquiredAt"),
        )

    def renew_lease(
        self, lease: dt.date | str, owner: str, seconds: int, token: str | None = None
    ) -> bool:
        """Extend the lease if this owner (and, given one, this token) still holds it."""
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        flt: dict[str, Any] = {"_id": lease_id(lease), "owner": owner}
        if token is not None:
            flt["token"] = token
        res = self.leases.update_one(flt, {"$set": {"expiresAt": expires}})
        return res.matched_count == 1

    def release_lease(self, lease: dt.date | str, owner: str, token: str | None = None) -> None:
        flt: dict[str, Any] = {"_id": lease_id(lease), "owner": owner}
        if token is not None:
            flt["token"] = token
        self.leases.delete_one(flt)

    def live_leases(self, now: dt.datetime) -> list[Lease]:
        """Days a run is archiving now: leases not yet expired (the holder renews while
        working) whose holder, when it ran on this host, is still alive."""
        here = socket.gethostname()
        leases = [self._lease(doc) for doc in self.leases.find({"expiresAt": {"$gt": now}})]
        return [x for x in leases if x.host != here or pid_alive(x.pid)]

    def fenced(self, fence: Fence, write: Callable[[ClientSession], T]) -> T:
        """``write(session)`` inside a transaction that first extends the lease matching
        ``fence`` (owner and token): committed together, or not at all. Raises LeaseLost
        (nothing written) when another run holds the lease now; NoTransactions when the
        server has none (a standalone mongod: fencing needs a replica set)."""

        def body(session: ClientSession) -> T:
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=fence.seconds)
            res = self.leases.update_one(
                {"_id": fence.lease_id, "owner": fence.owner, "token": fence.token},
                {"$set": {"expiresAt": expires}},
                session=session,
            )
            if res.matched_count != 1:
                raise LeaseLost(f"the lease on {fence.lease_id} is no longer held by {fence.owner}")
            return write(session)

        with self.client.start_session() as session:
            try:
                # with_transaction retries transient errors (a WriteConflict with a
                # concurrent take-over) by itself; the retry then sees who holds the lease.
                return session.with_transaction(body)
            except OperationFailure as e:
                if e.code == _ILLEGAL_OPERATION or "Transaction numbers are only allowed" in str(e):
                    raise NoTransactions(
                        "MongoDB refused a transaction: the archive records, logs and deletes "
                        "only inside transactions fenced by the day's lease, which needs a "
                        "replica set (a single-node replica set will do). Nothing was written."
                    ) from None
                raise

    @staticmethod
    def _lease(doc: dict[str, Any] | None) -> Lease:
        if doc is None:  # released between our two reads: report it as just expired
            return Lease("", "", "", 0, dt.datetime.now(dt.UTC))
        return Lease(
            doc["_id"],
            doc["owner"],
            doc.get("host", ""),
            doc.get("pid", 0),
            doc["expiresAt"],
            doc.get("token", ""),
            acquired_at=doc.get("acquiredAt"),
        )


def pid_alive(pid: Any) -> bool:
    """Whether a process of this id exists on this host (ours or another user's)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

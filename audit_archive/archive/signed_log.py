"""Appending recorded parts to the signed log (SPEC section 7): the archive's side.

A run appends after ``record`` and before ``purge`` deletes anything, under the
``signed-log`` lease (the same lease mechanism as a day's, in ``<batches>_leases``), so
appends from concurrent runs are serialized. Every append catches up on *all* recorded
parts not yet logged, in (day, part) order, so switching the log on for an existing
archive, or a run that died half way, is completed by whichever run comes next.

Order of one append, each step idempotent (a crash anywhere converges on the next run):
1. leaf documents in Mongo (``<batches>_log``: unique index and unique (day, part), so
   indexes are dense and no part is a leaf twice);
2. entry objects ``log/entries/<i>.json`` for every leaf past the published size;
3. ``log/checkpoints/<size>`` (never rewritten), then ``log/checkpoint`` (the latest);
4. ``logIndex`` on the batch records: a record with ``logIndex`` is covered by a
   published checkpoint, and only then may its events leave hot (``require_logged``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from pymongo.errors import DuplicateKeyError

from audit_archive.archive import witnessing
from audit_archive.archive.leases import LeaseKeeper, acquire_lease, release
from audit_archive.archive.witnessing import Witnessed
from audit_archive.errors import StorageError
from audit_archive.format import layout
from audit_archive.format.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit_archive.format.logentry import (
    Entry,
    EntryError,
    checkpoint_key,
    entry_key,
    latest_checkpoint_key,
    parse_entry,
)
from audit_archive.format.note import NoteError, Signer
from audit_archive.format.tlog import leaf_hash, tree_hash
from audit_archive.progress import Log, quiet
from audit_archive.stores.clients import Stores
from audit_archive.stores.conditional import WriteConflict
from audit_archive.stores.logstore import LogStore

LOG_LEASE = "signed-log"  # _id of the log's lease document (never a day)
INDEX_BATCH = 500  # logIndex updates per fenced transaction
ENTRY_CONTENT_TYPE = "application/json"
CHECKPOINT_CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class LogState:
    """The log after an append: what the published checkpoint says."""

    size: int
    root_hex: str
    origin: str
    appended: tuple[tuple[str, int, int], ...] = ()  # (day, part, index) logged now
    witnessed: Witnessed | None = None  # with AUDIT_LOG_WITNESSES: who cosigned the head

    def metadata(self) -> dict[str, Any]:
        out = {"log_origin": self.origin, "log_size": self.size, "log_root": self.root_hex}
        return {**out, **(self.witnessed.metadata() if self.witnessed else {})}


def log_store(stores: Stores) -> LogStore:
    return stores.log


def append(
    stores: Stores, owner: str, *, wait_seconds: float = 600, log: Log = quiet
) -> LogState | None:
    """Log every recorded part not yet logged and publish the checkpoint; None when the
    log is off (no AUDIT_LOG_SIGNING_KEY). Raises StorageError (nothing deleted) when the
    log cannot be extended safely."""
    signer = stores.settings.log_signer
    if signer is None:
        return None
    store = log_store(stores)
    store.ensure_indexes()
    lease = acquire_lease(stores, LOG_LEASE, owner, wait_seconds, log)
    try:
        with LeaseKeeper(stores, LOG_LEASE, owner, lease.token, "the signed log's append") as k:
            state = _append_locked(stores, signer, store, k, log)
            if witnessing.enabled(stores):  # SPEC 8: cosigned by a quorum before any purge
                hashes = [bytes.fromhex(leaf["leafHash"]) for leaf in store.all_leaves()]
                witnessed = witnessing.witness_head(stores, hashes, k.check, log)
                state = replace(state, witnessed=witnessed)
            return state
    finally:
        release(stores, LOG_LEASE, owner, lease.token)


def catch_up(stores: Stores, owner: str, log: Log = quiet) -> LogState | None:
    """``append`` only when some recorded part is not yet covered (one indexed query)."""
    if stores.settings.log_signer is None:
        return None
    if not log_store(stores).any_unlogged():
        if not witnessing.needs_witnessing(stores):
            return None
        log("the signed log's head is not yet cosigned by a quorum of witnesses: submitting it")
    else:
        log("some recorded parts are not yet in the signed log: appending them first")
    return append(stores, owner, log=log)


def require_logged(stores: Stores, day: dt.date, part: int) -> None:
    """With the log on, an event leaves hot only once a signed checkpoint covers its part."""
    if stores.settings.log_signer is None:
        return
    index = log_store(stores).log_index(day, part)
    if index is None:
        raise StorageError(
            f"part {part} of {day} is not yet covered by a published checkpoint of the signed "
            "log, so nothing of it was deleted. Re-run the day: it logs the part first."
        )
    witnessing.require_witnessed(stores, day, part, index)


def _append_locked(
    stores: Stores, signer: Signer, store: LogStore, keeper: LeaseKeeper, log: Log
) -> LogState:
    """The append, holding the log's lease: leaf inserts and ``logIndex`` updates are
    fenced by it (stores.leasestore), objects are written once (entries and numbered
    checkpoints only where none is; the latest checkpoint only over the very one read,
    If-Match: a compare-and-swap, so a stalled run can never roll the head back)."""
    cold, check = stores.cold, keeper.check
    leaves = store.all_leaves()
    for i, leaf in enumerate(leaves):
        if leaf["_id"] != i:
            raise StorageError(
                f"the signed log's leaves in MongoDB skip index {i}; nothing was appended or "
                "deleted. Run audit-archive verify."
            )
    published, head_etag = _published(stores, signer)
    if published is not None and published.size > len(leaves):
        # MongoDB lost leaves the bucket has (restored from a backup, collection dropped):
        # the bucket is the authority, so read them back from its entries.
        log(f"rebuilding {published.size - len(leaves)} leaves of the signed log from the bucket")
        leaves += _leaves_from_bucket(stores, store, len(leaves), published.size, keeper)
    hashes = [bytes.fromhex(leaf["leafHash"]) for leaf in leaves]
    if published is not None and tree_hash(hashes[: published.size]) != published.root:
        raise StorageError(
            f"the bucket's latest checkpoint (size {published.size}) does not match the signed "
            "log's leaves; nothing was appended or deleted. Run audit-archive verify."
        )

    by_part = {(leaf["day"], leaf["part"]): leaf for leaf in leaves}
    unlogged = store.unlogged_records()
    appended = []
    for rec in unlogged:
        if (rec["day"], rec["part"]) in by_part:
            continue  # a leaf a stopped run inserted: published below
        check()
        data = cold.get_bytes(rec["manifestKey"])
        sha = hashlib.sha256(data).hexdigest()
        if sha != rec.get("manifestSha256"):
            raise StorageError(
                f"{rec['manifestKey']} differs from its batch record's manifestSha256, so it "
                "was not logged and nothing was deleted. Run audit-archive verify."
            )
        leaf = {
            "_id": len(leaves),
            "day": rec["day"],
            "part": rec["part"],
            "manifestKey": rec["manifestKey"],
            "manifestSha256": sha,
            "leafHash": leaf_hash(data).hex(),
        }
        try:
            stores.leases.fenced(keeper.fence, lambda s, leaf=leaf: store.insert_leaf(leaf, s))
        except DuplicateKeyError:
            raise StorageError(
                "another run appended to the signed log while this one held its lease; "
                "nothing was deleted. Re-run: the next append converges."
            ) from None
        keeper.changes[:] = [f"added leaves up to index {leaf['_id']} in MongoDB"]
        leaves.append(leaf)
        hashes.append(leaf_hash(data))
        by_part[(rec["day"], rec["part"])] = leaf
        appended.append((rec["day"], rec["part"], leaf["_id"]))

    start = published.size if published is not None else 0
    for leaf in leaves[start:]:
        check()
        entry = Entry(leaf["_id"], leaf["manifestKey"], leaf["manifestSha256"])
        _put_entry(stores, store, keeper, entry)
    size, root = len(leaves), tree_hash(hashes)
    if published is None or published.size != size:
        note = sign_checkpoint(Checkpoint(signer.name, size, root), signer).encode("utf-8")
        check()
        _put_numbered_checkpoint(stores, signer, size, root, note)
        check()
        _put_latest_checkpoint(stores, keeper, note, head_etag)
        log(f"signed log: published the checkpoint of size {size}")
    indexes = [(r["day"], r["part"], by_part[(r["day"], r["part"])]["_id"]) for r in unlogged]
    _set_indexes(stores, store, keeper, indexes)
    return LogState(size, root.hex(), signer.name, tuple(appended))


def _set_indexes(
    stores: Stores, store: LogStore, keeper: LeaseKeeper, indexes: list[tuple[str, int, int]]
) -> None:
    """``logIndex`` on the records, INDEX_BATCH per transaction fenced by the log's lease."""

    def write(batch: list[tuple[str, int, int]], session: Any) -> None:
        for day, part, index in batch:
            store.set_log_index(day, part, index, session)

    for i in range(0, len(indexes), INDEX_BATCH):
        stores.leases.fenced(keeper.fence, lambda s, b=indexes[i : i + INDEX_BATCH]: write(b, s))


def _published(stores: Stores, signer: Signer) -> tuple[Checkpoint | None, str | None]:
    """The latest checkpoint and the ETag of the object read (for the compare-and-swap
    that replaces it). Read by GET, so the ETag is the one of the bytes checked."""
    key = latest_checkpoint_key(stores.settings.cold_prefix)
    if stores.cold.head(key) is None:
        return None, None
    res = stores.cold.client.get_object(Bucket=stores.cold.bucket, Key=key)
    try:
        return open_checkpoint(res["Body"].read(), signer.verifier), res["ETag"]
    except NoteError as e:
        raise StorageError(
            f"{key} does not verify with AUDIT_LOG_SIGNING_KEY's verifier key ({e}); nothing "
            "was appended or deleted. Was the log key changed? Run audit-archive verify."
        ) from None


def _put_latest_checkpoint(
    stores: Stores, keeper: LeaseKeeper, note: bytes, etag: str | None
) -> None:
    """Replace exactly the latest checkpoint this append read (If-Match), or write the
    first one (If-None-Match): another run's newer head is never overwritten."""
    key = latest_checkpoint_key(stores.settings.cold_prefix)
    try:
        stores.cold.put_bytes(key, note, CHECKPOINT_CONTENT_TYPE, if_match=etag)
    except WriteConflict:
        done = "; ".join(keeper.changes) or "changed nothing"
        raise StorageError(
            f"{key} changed while this run appended (another run published a checkpoint), "
            f"so this run did not overwrite it. In the append this run {done}; it deleted "
            "nothing. Re-run: the next append converges."
        ) from None
    keeper.changes.append(f"published {key}")


def _put_entry(stores: Stores, store: LogStore, keeper: LeaseKeeper, entry: Entry) -> None:
    """Write the entry object where none is, or confirm the one there names the same
    manifest. One that names another is replaced only when no batch record's logIndex
    names it (left by an append whose leaves MongoDB lost), and only that very object
    (If-Match); otherwise the run stops."""
    key = entry_key(stores.settings.cold_prefix, entry.index)
    try:
        stores.cold.put_bytes(key, entry.to_bytes(), ENTRY_CONTENT_TYPE)
        keeper.changes.append(f"wrote {key}")
        return
    except WriteConflict:
        pass  # one is there already: it must say the same
    res = stores.cold.client.get_object(Bucket=stores.cold.bucket, Key=key)
    try:
        existing = parse_entry(res["Body"].read())
    except EntryError:
        existing = None
    if existing == entry:
        return
    if not store.index_named(entry.index):
        keeper.check()
        try:
            stores.cold.put_bytes(key, entry.to_bytes(), ENTRY_CONTENT_TYPE, if_match=res["ETag"])
            keeper.changes.append(f"replaced {key}, which no batch record's logIndex named")
            return
        except WriteConflict:
            pass
    raise StorageError(
        f"{key} is already in the bucket and names another manifest than leaf "
        f"{entry.index}; nothing was deleted. Run audit-archive verify."
    )


def _put_numbered_checkpoint(
    stores: Stores, signer: Signer, size: int, root: bytes, note: bytes
) -> None:
    """``checkpoints/<size>`` is never rewritten: one already there must say the same."""
    key = checkpoint_key(stores.settings.cold_prefix, size)
    try:
        stores.cold.put_bytes(key, note, CHECKPOINT_CONTENT_TYPE)
        return
    except WriteConflict:
        pass  # one is there already: it must say the same
    try:
        existing = open_checkpoint(stores.cold.get_bytes(key), signer.verifier)
    except NoteError:
        existing = None
    if existing is not None and existing.root == root:
        return
    raise StorageError(
        f"{key} is already in the bucket with another root; nothing was deleted. "
        "Run audit-archive verify."
    )


def _leaves_from_bucket(
    stores: Stores, store: LogStore, start: int, end: int, keeper: LeaseKeeper
) -> list[dict[str, Any]]:
    prefix, check = stores.settings.cold_prefix, keeper.check
    out = []
    for i in range(start, end):
        check()
        key = entry_key(prefix, i)
        try:
            entry = parse_entry(stores.cold.get_bytes(key))
        except EntryError as e:
            raise StorageError(
                f"{key} is not a log entry ({e}); run audit-archive verify"
            ) from None
        data = stores.cold.get_bytes(entry.manifest_key)
        parsed = layout.parse_part_key(entry.manifest_key)
        if entry.index != i or parsed is None:
            raise StorageError(f"{key} does not describe leaf {i}; run audit-archive verify")
        if hashlib.sha256(data).hexdigest() != entry.manifest_sha256:
            raise StorageError(
                f"{entry.manifest_key} differs from log entry {i}; run audit-archive verify"
            )
        leaf = {
            "_id": i,
            "day": parsed[0],
            "part": parsed[1],
            "manifestKey": entry.manifest_key,
            "manifestSha256": entry.manifest_sha256,
            "leafHash": leaf_hash(data).hex(),
        }
        stores.leases.fenced(keeper.fence, lambda s, leaf=leaf: store.insert_leaf(leaf, s))
        out.append(leaf)
    return out

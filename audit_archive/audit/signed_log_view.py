"""The readers' view of the signed log: which manifests the bucket's latest signed
checkpoint covers, and the ``log`` object of a proof (format/logproof.py).

The leaf hashes come from MongoDB (no manifest is read again), but nothing is taken on
trust: their tree must give the root that the checkpoint (verified with the public
verifier key) signs, and a manifest's own bytes must hash to its leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audit_archive.errors import AuditArchiveError
from audit_archive.format.checkpoint import open_checkpoint
from audit_archive.format.logentry import latest_checkpoint_key, witnessed_prefix
from audit_archive.format.logproof import build_log_object
from audit_archive.format.note import NoteError, Verifier, open_note
from audit_archive.format.tlog import inclusion_proof, leaf_hash, tree_hash
from audit_archive.stores.clients import Stores


class LogProofError(AuditArchiveError):
    """The signed log cannot vouch for this part (not covered yet, or inconsistent)."""


class SignedLogView:
    """The latest checkpoint and the leaves it covers, checked against each other once."""

    def __init__(self, stores: Stores, verifier: Verifier) -> None:
        key = latest_checkpoint_key(stores.settings.cold_prefix)
        if stores.cold.head(key) is None:
            raise LogProofError("the signed log has no checkpoint yet")
        self.note = stores.cold.get_bytes(key)
        try:
            self.checkpoint = open_checkpoint(self.note, verifier)
        except NoteError as e:
            raise LogProofError(f"{key} does not verify with the verifier key: {e}") from None
        size = self.checkpoint.size
        leaves = stores.log.all_leaves()[:size]
        self.hashes = [bytes.fromhex(leaf["leafHash"]) for leaf in leaves]
        if len(self.hashes) != size or tree_hash(self.hashes) != self.checkpoint.root:
            raise LogProofError(
                "the log's leaves in MongoDB do not give the checkpoint's root; run "
                "audit-archive verify with the verifier key"
            )
        self.index_of = {leaf["manifestKey"]: i for i, leaf in enumerate(leaves)}
        self.stores, self.verifier = stores, verifier

    def index(self, manifest_key: str, manifest_bytes: bytes) -> int:
        """The manifest's leaf index, or LogProofError if the checkpoint does not cover it."""
        index = self.index_of.get(manifest_key)
        if index is None:
            raise LogProofError(f"{manifest_key} is not covered by the log's latest checkpoint")
        if leaf_hash(manifest_bytes) != self.hashes[index]:
            raise LogProofError(f"{manifest_key} differs from its leaf {index} in the signed log")
        return index

    def vouches(self, manifest_key: str, manifest_bytes: bytes) -> bool:
        try:
            self.index(manifest_key, manifest_bytes)
        except LogProofError:
            return False
        return True

    def log_object(self, manifest_key: str, manifest_bytes: bytes) -> dict[str, Any]:
        index = self.index(manifest_key, manifest_bytes)
        note, size = self._cosigned_note(index)
        path = inclusion_proof(self.hashes, index, size)
        return build_log_object(index, size, path, manifest_bytes, note.decode("utf-8"))

    def _cosigned_note(self, index: int) -> tuple[bytes, int]:
        """The checkpoint a proof carries: the head, unless it has no cosignatures yet (a
        run published it and its witnesses have not answered) while the largest
        ``log/witnessed/<size>`` covers the leaf; then that one, with its cosignatures."""
        head = (self.note, self.checkpoint.size)
        if open_note(self.note, [self.verifier]).unverified:  # other keys' lines: cosigned
            return head
        prefix = self.stores.settings.cold_prefix
        keys = sorted(o["Key"] for o in self.stores.cold.list_keys(witnessed_prefix(prefix)))
        if not keys:
            return head
        note = self.stores.cold.get_bytes(keys[-1])
        try:
            cp = open_checkpoint(note, self.verifier)
        except NoteError:
            return head
        if index < cp.size <= len(self.hashes) and tree_hash(self.hashes[: cp.size]) == cp.root:
            return note, cp.size
        return head


class LogViewOnce:
    """The signed log's view for one command, opened on first use and reused after: a
    reader vouching for a manifest (``vouch``) and a proof's ``log`` object (``view``)
    share one open. A view that cannot be opened is not tried again."""

    def __init__(self, stores: Stores, verifier: Verifier) -> None:
        self.stores, self.verifier = stores, verifier
        self._view: SignedLogView | None = None
        self._error: LogProofError | None = None

    def view(self) -> SignedLogView:
        """The view; LogProofError (the same one every time) when it cannot be opened."""
        if self._view is None:
            if self._error is not None:
                raise self._error
            try:
                self._view = SignedLogView(self.stores, self.verifier)
            except LogProofError as e:
                self._error = e
                raise
        return self._view

    def vouch(self, manifest_key: str, manifest_bytes: bytes) -> bool:
        """For ``reader.open_part``: does the signed log cover this manifest (its exact
        bytes)? A log that cannot be loaded vouches for nothing."""
        try:
            return self.view().vouches(manifest_key, manifest_bytes)
        except LogProofError:
            return False


def log_view(stores: Stores) -> LogViewOnce | None:
    """The signed log's view, opened on first use; None without a verifier key."""
    verifier = stores.settings.log_verifier
    return None if verifier is None else LogViewOnce(stores, verifier)


def log_vouch(stores: Stores) -> Callable[[str, bytes], bool] | None:
    """For ``reader.open_part``: does the signed log cover this manifest (its exact
    bytes)? None without a verifier key; the log's view is loaded once, on first use."""
    view = log_view(stores)
    return None if view is None else view.vouch

"""Checking the signed log from the bucket alone, with only the public verifier key
(SPEC section 7, Readers). ``verify`` folds the result into its report.

What is checked, from the bucket as it is now:
- the entries ``log/entries/<i>.json`` run 0, 1, 2, ... with no gap, each naming a
  manifest that exists with the sha256 it gives;
- the latest checkpoint ``log/checkpoint`` is signed by the verifier key, its root is
  the RFC 6962 tree over those manifests' bytes as stored, and its size is neither below
  the number of entries nor below any numbered checkpoint (a rolled-back head);
- every stored checkpoint ``log/checkpoints/<n>`` verifies and is a prefix of that
  tree (so all are consistent with the latest);
- every checkpoint kept outside the archive (``--trusted-checkpoint``) is extended by
  the tree: a history rewritten after it, even by someone holding every key, shows;
- every recorded part is a leaf a valid checkpoint covers.

A part whose manifest is a leaf of a checkpoint that verifies and matches counts as
authenticated, so an auditor without the HMAC key still gets ``valid``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from audit_archive.audit.witness_check import cosigned_checkpoints, witnessed_coverage
from audit_archive.format import layout
from audit_archive.format.checkpoint import Checkpoint, open_checkpoint
from audit_archive.format.logentry import (
    Entry,
    EntryError,
    checkpoints_prefix,
    entries_prefix,
    index_of_entry_key,
    latest_checkpoint_key,
    parse_entry,
    size_of_checkpoint_key,
)
from audit_archive.format.note import NoteError, Verifier
from audit_archive.format.tlog import TreeBuilder, leaf_hash
from audit_archive.stores.clients import Stores

WORKERS = 8
PartKey = tuple[dt.date, int]


@dataclass
class LogCheck:
    """The log's findings (whole-log and per part) and what it authenticates."""

    origin: str
    size: int | None = None  # the latest checkpoint's, when it verifies
    root_hex: str | None = None
    entries: int = 0
    covered: int = 0  # leaves covered by a checkpoint that verifies and matches the tree
    findings: list[str] = field(default_factory=list)
    part_findings: dict[PartKey, list[tuple[str, str]]] = field(default_factory=dict)
    authenticated: dict[PartKey, str] = field(default_factory=dict)  # -> manifest sha256
    # With witness keys (SPEC 8): leaves a checkpoint cosigned by a quorum covers, and who.
    witnessed: int | None = None
    witnesses: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    def add_part(self, part: PartKey, kind: str, message: str) -> None:
        self.part_findings.setdefault(part, []).append((kind, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "checkpointSize": self.size,
            "checkpointRoot": self.root_hex,
            "entries": self.entries,
            "covered": self.covered,
            "findings": list(self.findings),
            **(
                {"witnessedSize": self.witnessed, "witnesses": list(self.witnesses)}
                if self.witnessed is not None
                else {}
            ),
        }


def _get(stores: Stores, key: str) -> bytes | None:
    try:
        return stores.cold.get_bytes(key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def _part_of(manifest_key: str) -> PartKey | None:
    parsed = layout.parse_part_key(manifest_key)
    day = layout.parse_day_or_none(parsed[0]) if parsed else None
    return (day, parsed[1]) if parsed and day is not None else None


def check_log(
    stores: Stores,
    verifier: Verifier,
    records: Iterable[Mapping[str, Any]],
    trusted: Sequence[tuple[str, bytes]] = (),
    workers: int = WORKERS,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
) -> LogCheck:
    """Check the log in the bucket against ``verifier``; ``trusted`` is (name, note).
    With ``witnesses``, every recorded part must also be covered by a checkpoint carrying
    valid cosignatures of ``quorum`` of them (``witness_check``)."""
    prefix = stores.settings.cold_prefix
    out = LogCheck(verifier.name)
    out.entries = _dense_entries(stores, prefix, out)
    loaded = _load_entries(stores, prefix, out.entries, workers)
    leaves, entry_of = _leaves(loaded, out)
    usable = next((i for i, leaf in enumerate(leaves) if leaf is None), len(leaves))
    cosigned = cosigned_checkpoints(stores, verifier, witnesses, quorum) if witnesses else {}
    trusted = [
        *trusted,
        *((f"trusted checkpoint {k} (cosigned)", n) for k, (n, _) in cosigned.items()),
    ]
    latest, opened = _open_checkpoints(stores, prefix, verifier, trusted, out)
    good_sizes, rewritten = _check_roots(opened, leaves, usable, out.entries, latest, out)
    out.covered = 0 if rewritten else max(good_sizes, default=0)
    if witnesses:
        witnessed_coverage(out, cosigned, good_sizes, rewritten)
    _authenticate(loaded, entry_of, out)
    _check_records(records, entry_of, out)
    return out


Loaded = tuple[Entry | None, bytes | None, str | None]


def _dense_entries(stores: Stores, prefix: str, out: LogCheck) -> int:
    """Entries 0..n-1 with no gap: n (anything past a gap is a finding)."""
    indexes: list[int] = []
    for obj in stores.cold.list_keys(entries_prefix(prefix)):
        i = index_of_entry_key(prefix, obj["Key"])
        if i is None:
            out.findings.append(f"{obj['Key']} is in the log's entries but is no entry")
        else:
            indexes.append(i)
    indexes.sort()
    dense = 0
    while dense < len(indexes) and indexes[dense] == dense:
        dense += 1
    if dense < len(indexes):
        out.findings.append(
            f"the log's entries have a gap: entry {dense} is missing, yet "
            f"{len(indexes) - dense} later entr(y/ies) exist; the tree stops at {dense}"
        )
    return dense


def _load_entries(stores: Stores, prefix: str, count: int, workers: int) -> list[Loaded]:
    """Each entry and the manifest it names, as stored now (read concurrently)."""

    def load(i: int) -> Loaded:
        raw = _get(stores, f"{entries_prefix(prefix)}{i:012d}.json")
        if raw is None:
            return None, None, f"log entry {i} vanished while verifying"
        try:
            entry = parse_entry(raw)
        except EntryError as e:
            return None, None, f"log entry {i} is not an entry: {e}"
        if entry.index != i:
            return None, None, f"log entry {i} says it is entry {entry.index}"
        return entry, _get(stores, entry.manifest_key), None

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="log") as pool:
        return list(pool.map(load, range(count)))


def _leaves(loaded: list[Loaded], out: LogCheck) -> tuple[list[bytes | None], dict[PartKey, int]]:
    """The leaf hash of each entry's manifest (None where it cannot be had), and which
    entry logs which part."""
    leaves: list[bytes | None] = []
    entry_of: dict[PartKey, int] = {}
    for i, (entry, data, problem) in enumerate(loaded):
        if problem is not None or entry is None:
            out.findings.append(problem or f"log entry {i} cannot be read")
            leaves.append(None)
            continue
        part = _part_of(entry.manifest_key)
        if part is None:
            out.findings.append(f"log entry {i} names {entry.manifest_key}, which is no manifest")
        elif part in entry_of:
            out.findings.append(
                f"{entry.manifest_key} is logged twice (entries {entry_of[part]} and {i})"
            )
        else:
            entry_of[part] = i
        if data is None:
            out.findings.append(f"log entry {i} names {entry.manifest_key}, which is missing")
            if part is not None:
                out.add_part(part, "missing", f"its manifest (log entry {i}) is missing")
            leaves.append(None)
            continue
        if hashlib.sha256(data).hexdigest() != entry.manifest_sha256:
            message = (
                f"{entry.manifest_key}'s bytes differ from log entry {i}'s manifestSha256: "
                "the manifest was changed after it was logged"
            )
            out.findings.append(message)
            if part is not None:
                out.add_part(part, "modified", message)
        leaves.append(leaf_hash(data))
    return leaves, entry_of


def _open_checkpoints(
    stores: Stores,
    prefix: str,
    verifier: Verifier,
    trusted: Sequence[tuple[str, bytes]],
    out: LogCheck,
) -> tuple[str, list[tuple[str, Checkpoint, bool]]]:
    """The latest, every stored and every trusted checkpoint that verifies, as
    (name, checkpoint, trusted); the latest's name first in the result."""
    latest = latest_checkpoint_key(prefix)
    notes: list[tuple[str, bytes | None]] = [(latest, _get(stores, latest))]
    for obj in stores.cold.list_keys(checkpoints_prefix(prefix)):
        if size_of_checkpoint_key(prefix, obj["Key"]) is None:
            out.findings.append(f"{obj['Key']} is in the log's checkpoints but is no checkpoint")
        else:
            notes.append((obj["Key"], _get(stores, obj["Key"])))
    opened: list[tuple[str, Checkpoint, bool]] = []
    for name, note in [*notes, *((f"trusted checkpoint {n}", b) for n, b in trusted)]:
        is_trusted = name.startswith("trusted checkpoint ")
        if note is None:
            if name == latest:
                out.findings.append(
                    f"the signed log has no checkpoint ({name} is missing), so nothing is "
                    "covered by it"
                )
            continue
        try:
            cp = open_checkpoint(note, verifier)
        except NoteError as e:
            out.findings.append(f"{name} does not verify with the verifier key: {e}")
            continue
        numbered = not is_trusted and name != latest
        if numbered and size_of_checkpoint_key(prefix, name) != cp.size:
            out.findings.append(f"{name} holds the checkpoint of size {cp.size}")
            continue
        opened.append((name, cp, is_trusted))
    return latest, opened


def _check_roots(
    opened: list[tuple[str, Checkpoint, bool]],
    leaves: list[bytes | None],
    usable: int,
    dense: int,
    latest: str,
    out: LogCheck,
) -> tuple[list[int], bool]:
    """Each checkpoint against the tree over the manifests as stored: the sizes that
    match, and whether a trusted one shows history rewritten."""
    wanted = {cp.size for _, cp, _ in opened if cp.size <= usable}
    roots: dict[int, bytes] = {}
    builder = TreeBuilder()
    if 0 in wanted:
        roots[0] = builder.root()
    for i in range(max(wanted, default=0)):
        builder.append(leaves[i])  # type: ignore[arg-type]
        if i + 1 in wanted:
            roots[i + 1] = builder.root()
    good_sizes: list[int] = []
    rewritten = False
    for name, cp, is_trusted in opened:
        if cp.size > usable:
            why = (
                "the log has only "
                + (f"{dense} entries" if usable == dense else f"{usable} usable entries")
                + f", but {name} covers {cp.size}"
            )
            out.findings.append(
                why + (": history was removed after it was kept" if is_trusted else "")
            )
            rewritten |= is_trusted
        elif roots[cp.size] != cp.root:
            out.findings.append(
                f"{name} (size {cp.size}) is not a prefix of the log as stored now: "
                + (
                    "history was rewritten after it was kept"
                    if is_trusted
                    else "its root differs from the tree over the entries' manifests"
                )
            )
            rewritten |= is_trusted
        else:
            good_sizes.append(cp.size)
        if name == latest:
            out.size, out.root_hex = cp.size, cp.root.hex()
    _check_head(opened, dense, latest, out)
    return good_sizes, rewritten


def _check_head(
    opened: list[tuple[str, Checkpoint, bool]], dense: int, latest: str, out: LogCheck
) -> None:
    """The latest checkpoint is the head readers start from: one smaller than the number
    of entries or than a numbered checkpoint was rolled back (or never published), and
    hides every part after it from a reader who trusts the head. A finding of the whole
    log, whatever else verifies."""
    head = next((cp.size for name, cp, _ in opened if name == latest), None)
    if head is None:
        return  # a missing or bad latest checkpoint is already a finding
    if head < dense:
        out.findings.append(
            f"{latest} covers {head} of the log's {dense} entries: the head lags the "
            "entries (rolled back, or never published after an append), hiding every part "
            "after it"
        )
    numbered = max((cp.size for name, cp, t in opened if not t and name != latest), default=0)
    if head < numbered:
        out.findings.append(
            f"{latest} covers {head} entries, but the numbered checkpoint of size "
            f"{numbered} is stored: the head was rolled back"
        )


def _authenticate(loaded: list[Loaded], entry_of: dict[PartKey, int], out: LogCheck) -> None:
    """Every part whose manifest a valid checkpoint covers: authenticated (by its sha256)."""
    for part, i in entry_of.items():
        if i < out.covered:
            entry, data, _ = loaded[i]
            if entry is not None and data is not None:
                out.authenticated[part] = hashlib.sha256(data).hexdigest()


def _check_records(
    records: Iterable[Mapping[str, Any]], entry_of: dict[PartKey, int], out: LogCheck
) -> None:
    """Recorded parts the log does not cover, and records that disagree with the log."""
    for rec in records:
        day, number = layout.parse_day_or_none(rec.get("day")), rec.get("part")
        if day is None or not isinstance(number, int):
            continue
        part = (day, number)
        i = entry_of.get(part)
        if i is None or i >= out.covered:
            out.add_part(
                part,
                "unverifiable",
                "it is recorded but no valid checkpoint of the signed log covers it"
                + ("" if i is None else f" (it is log entry {i})"),
            )
        elif out.witnessed is not None and i >= out.witnessed:
            out.add_part(
                part,
                "unverifiable",
                f"no checkpoint cosigned by the witnesses' quorum covers it (it is log entry {i})",
            )
        elif rec.get("logIndex") is not None and rec.get("logIndex") != i:
            out.add_part(
                part,
                "modified",
                f"its batch record says logIndex {rec.get('logIndex')}, but it is log entry {i}",
            )

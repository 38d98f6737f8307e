"""What each step returns, flat: the day's ``PartRef`` (which part, whose lease, where it is
staged), passed on by every step, plus only what that step adds.

    extract  -> Extracted(ref, event_count, start_seq, end_seq, predecessor, successor, ...)
                or Skip(day, reason, ...) when nothing is to be written
    encode   -> Encoded(ref, summary, malformed)
    sign     -> Signed(ref, manifest_key, manifest_sha256, manifest_bytes, key_id)
    upload   -> Uploaded(ref, confirmations, skipped_existing)
    record   -> Recorded(ref, record, inserted, log_metadata)
    purge    -> Purged(ref, deleted, batches, exact_fallbacks)

A step that needs an earlier step's facts takes that step's result as its own argument
(``upload_and_confirm(stores, encoded, signed)``), as the Dagster ops take them as inputs.
All are small frozen descriptors (paths, counts, hashes), never events and never a secret:
Dagster's default IO manager pickles each op's output into its storage.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

from audit_archive.format.chain import Link
from audit_archive.format.manifest import PartSummary
from audit_archive.stores.cold import Confirmation


@dataclass(frozen=True)
class PartRef:
    """The part of the day this run is archiving, and the lease that lets it: the run's
    ``owner`` holds the day's lease under ``lease_token`` (stores.leasestore), and the
    part's staging files sit in ``workdir`` under names derived from the part number."""

    day: dt.date
    part: int
    owner: str
    lease_token: str
    workdir: str

    def _staged(self, suffix: str) -> str:
        return os.path.join(self.workdir, f"part-{self.part:04d}.{suffix}")

    @property
    def events_path(self) -> str:
        """The day's chained events as the server's raw BSON (extract)."""
        return self._staged("events.bson")

    @property
    def neighbours_path(self) -> str:
        """Other days' chain links in the staged events' holes, one JSON line each (extract)."""
        return self._staged("neighbours.jsonl")

    @property
    def jsonl_path(self) -> str:
        """The part's gzip JSONL (encode; none for a day without events)."""
        return self._staged("jsonl.gz")

    @property
    def runs_path(self) -> str:
        """The seq runs purge deletes by, ``[lo, hi, count]`` (encode)."""
        return self._staged("runs.json")

    @property
    def manifest_path(self) -> str:
        """The signed manifest's bytes (sign)."""
        return self._staged("manifest.json")


@dataclass(frozen=True)
class Extracted:
    """Step 1: the part's events are staged and the day's lease is held."""

    ref: PartRef
    event_count: int
    start_seq: int | None
    end_seq: int | None
    predecessor: Link | None
    successor: Link | None
    recovered_parts: tuple[int, ...] = ()  # recorded parts whose interrupted purge ended now
    recovered_deleted: int = 0
    malformed: tuple[str, ...] = ()  # chained events left in hot, named (malformed.py)


@dataclass(frozen=True)
class Encoded:
    """Step 2: the part's JSONL.gz is written (``ref.jsonl_path`` when it has events) and
    the seq runs for the purge (``ref.runs_path``)."""

    ref: PartRef
    summary: PartSummary
    malformed: tuple[str, ...] = ()  # extract's and encode's, named by _id


@dataclass(frozen=True)
class Signed:
    """Step 3: the signed manifest is written (``ref.manifest_path``)."""

    ref: PartRef
    manifest_key: str
    manifest_sha256: str
    manifest_bytes: int
    key_id: str


@dataclass(frozen=True)
class Uploaded:
    """Step 4: both objects are in the bucket, each confirmed (size and checksum)."""

    ref: PartRef
    confirmations: tuple[Confirmation, ...]
    skipped_existing: tuple[str, ...] = ()  # keys already there with the same bytes


@dataclass(frozen=True)
class Recorded:
    """Step 5: the batch record is in (by this run: ``inserted``), and with the signed log
    on, the part is logged (``log_metadata``: what the log said, for the UI)."""

    ref: PartRef
    record: dict[str, Any] = field(hash=False)
    inserted: bool
    log_metadata: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Purged:
    """Step 6: the part's events are gone from hot, the lease released."""

    ref: PartRef
    deleted: int
    batches: int
    exact_fallbacks: int


@dataclass(frozen=True)
class Skip:
    """Nothing to write for this day; ``reason`` says why (shown to the operator)."""

    day: dt.date
    reason: str
    recovered_parts: tuple[int, ...] = ()
    recovered_deleted: int = 0
    malformed: tuple[str, ...] = ()

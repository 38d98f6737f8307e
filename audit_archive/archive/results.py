"""What the steps hand each other: small frozen descriptors (paths, counts, hashes),
never events and never a secret: the IO manager keeps them in memory, and one that pickled
op outputs into Dagster's storage (its default) would write them there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from audit_archive.format.chain import Link
from audit_archive.format.manifest import (
    PartSummary,
)
from audit_archive.stores.cold import Confirmation

# -- descriptors passed between ops ---------------------------------------------------


@dataclass(frozen=True)
class Extracted:
    day: dt.date
    part: int
    owner: str
    workdir: str
    events_path: str
    neighbors_path: str
    event_count: int
    start_seq: int | None
    end_seq: int | None
    predecessor: Link | None
    successor: Link | None
    recovered_parts: tuple[int, ...] = ()
    recovered_deleted: int = 0
    malformed: tuple[str, ...] = ()  # chained events left in hot, named (malformed.py)
    lease_token: str = ""  # the day's lease's fencing token (stores.leasestore)


@dataclass(frozen=True)
class Encoded:
    extracted: Extracted
    summary: PartSummary
    jsonl_path: str | None
    runs_path: str
    malformed: tuple[str, ...] = ()  # extract's and encode's, named by _id


@dataclass(frozen=True)
class Signed:
    encoded: Encoded
    manifest_path: str
    manifest_key: str
    manifest_sha256: str
    manifest_bytes: int
    key_id: str


@dataclass(frozen=True)
class Uploaded:
    signed: Signed
    confirmations: tuple[Confirmation, ...]
    skipped_existing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recorded:
    uploaded: Uploaded
    record: dict[str, Any] = field(hash=False)
    inserted: bool


@dataclass(frozen=True)
class Purged:
    day: dt.date
    part: int
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

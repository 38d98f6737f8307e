"""A day's current state in the archive, as every materialization of the day shows it
(a run that archived a part and a re-run that changed nothing alike): its parts, events,
checksums and places in the signed log. Read from the batch records, the authority for
what is archived."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from audit_archive.archive.signed_log import log_store
from audit_archive.stores.clients import Stores


@dataclass(frozen=True)
class DayState:
    day: dt.date
    records: tuple[dict[str, Any], ...] = field(hash=False)
    log_size: int | None  # None: the signed log is off (no AUDIT_LOG_SIGNING_KEY)
    # Witnesses' cosignatures on the checkpoint that covers the day: filled in by the
    # witness step once it exists (SPEC section 8); None until then.
    cosignatures: dict[str, Any] | None = None

    @property
    def events(self) -> int:
        return sum(r["eventCount"] for r in self.records)

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.records[-1] if self.records else None


def day_state(stores: Stores, day: dt.date) -> DayState:
    """Two indexed reads: the day's records and the log's size."""
    records = tuple(stores.batches.records(day))
    size = log_store(stores).size() if stores.settings.log_signer is not None else None
    return DayState(day, records, size)

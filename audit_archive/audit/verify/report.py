"""What verification says: statuses, findings, one report per day, and the whole report.

Typed all the way: callers branch on :class:`Status` and :class:`ReadReason`, never on a
message's text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from audit_archive.errors import AuditArchiveError
from audit_archive.format import layout


class Status(StrEnum):
    VALID = "valid"
    EMPTY = "empty"
    MODIFIED = "modified"
    CHAIN_BREAK = "chain-break"
    UNVERIFIABLE = "unverifiable"
    ORPHAN = "orphan"
    MISSING = "missing"
    OVERDUE = "overdue"
    IN_PROGRESS = "in-progress"
    NOT_DUE = "not-due"
    BEFORE_START = "before-start"


# Most serious first: a day with several findings takes the first of these.
PRECEDENCE: tuple[Status, ...] = (
    Status.MODIFIED,
    Status.CHAIN_BREAK,
    Status.UNVERIFIABLE,
    Status.ORPHAN,
    Status.MISSING,
    Status.OVERDUE,
)
CLEAN: frozenset[Status] = frozenset(
    {Status.VALID, Status.EMPTY, Status.NOT_DUE, Status.IN_PROGRESS, Status.BEFORE_START}
)
# What a run in progress leaves for a moment (its objects before its record, its events
# in hot until the purge): not findings while the run holds the day's lease.
MID_RUN: frozenset[Status] = frozenset({Status.ORPHAN, Status.MISSING, Status.OVERDUE})


class RangeError(AuditArchiveError):
    """The requested days hold nothing to verify (a usage error, exit 2)."""


class ReadReason(StrEnum):
    """Why the cheap check could not confirm an events object, so its bytes were read."""

    NO_CHECKSUM = "stored without the SHA-256 checksum the archiver sends"
    REWRITTEN = "Last-Modified is after the record's archivedAt"
    CHECKSUM_DIFFERS = "the server's checksum is not the object's SHA-256"
    PARTS_DIFFER = "the server's multipart checksum names another number of parts"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a day (or the whole archive); ``kind`` is the status it implies."""

    kind: Status
    message: str
    part: int | None = None
    seqs: tuple[int, ...] = ()
    # A state no run in progress leaves, even for a moment (a recorded part's object
    # gone, a lease no run can hold): a day's lease never turns it into `in-progress`.
    lasting: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind)}
        if self.part is not None:
            out["part"] = self.part
        if self.seqs:
            out["seqs"] = list(self.seqs)
        out["message"] = self.message
        return out

    def __str__(self) -> str:
        where = f"part {self.part}: " if self.part is not None else ""
        return f"{self.kind}: {where}{self.message}"


def day_status(
    findings: Iterable[Finding],
    *,
    due: bool,
    parts: int,
    events: int,
    in_progress: bool = False,
    partition: bool = True,
) -> Status:
    """The day's one status: its most serious finding, else what it holds. A day whose
    lease a live run holds is ``in-progress`` while its findings are what a run leaves
    for a moment (none of them ``lasting``)."""
    findings = list(findings)
    kinds = {f.kind for f in findings}
    if in_progress and kinds and kinds <= MID_RUN and not any(f.lasting for f in findings):
        return Status.IN_PROGRESS
    for status in PRECEDENCE:
        if status in kinds:
            return status
    if parts == 0:
        # A due day without parts always carries a `missing` finding.
        if not partition:
            return Status.BEFORE_START
        return Status.IN_PROGRESS if in_progress else Status.NOT_DUE if not due else Status.MISSING
    return Status.VALID if events else Status.EMPTY


@dataclass
class DayReport:
    day: dt.date
    due: bool
    findings: list[Finding] = field(default_factory=list)
    parts: int = 0
    events: int = 0
    partition: bool = True  # False: before ARCHIVE_START_DATE
    in_progress: str | None = None  # who holds the day's lease, when a live run does

    @property
    def status(self) -> Status:
        return day_status(
            self.findings,
            due=self.due,
            parts=self.parts,
            events=self.events,
            in_progress=self.in_progress is not None,
            partition=self.partition,
        )

    def add(self, finding: Finding) -> None:
        if finding not in self.findings:
            self.findings.append(finding)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "day": layout.format_day(self.day),
            "status": str(self.status),
            "findings": [f.as_dict() for f in self.findings],
            "parts": self.parts,
            "events": self.events,
        }
        if self.in_progress is not None:
            out["inProgress"] = self.in_progress
        return out


@dataclass
class Report:
    days: list[DayReport]
    summary: dict[str, Any]
    # Findings of no one day: events that belong to no day, the signed log's checks.
    archive: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            all(d.status in CLEAN for d in self.days)
            and not self.summary.get("strayObjects")
            and not self.archive
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def with_findings(self) -> list[DayReport]:
        return [d for d in self.days if d.status not in CLEAN]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": [d.as_dict() for d in self.days],
            "archive": [f.as_dict() for f in self.archive],
            "summary": {**self.summary, "ok": self.ok},
        }

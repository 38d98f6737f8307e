"""Exceptions an operator reads: each says what went wrong and what to do next."""

from __future__ import annotations

from collections.abc import Sequence


class AuditArchiveError(Exception):
    """Base class: anything this package raises on purpose."""


class ConfigError(AuditArchiveError):
    """Bad configuration, detected before any I/O. The message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class ChainBreakError(AuditArchiveError):
    """The events are not an intact piece of the chain; nothing may be deleted."""

    def __init__(self, breaks: list[tuple[int, str]], malformed: Sequence[str] = ()) -> None:
        # (seq, reason) for every event involved, in the order found; ``malformed``
        # names (by _id) the malformed events around the break, which stay in hot.
        self.breaks = breaks
        self.malformed = tuple(malformed)
        self.seqs = sorted({seq for seq, _ in breaks})
        if len(breaks) == 1:
            seq, reason = breaks[0]
            what = f"chain break at seq {seq}: {reason}"
        else:
            shown = "; ".join(f"seq {seq}: {reason}" for seq, reason in breaks[:20])
            more = f"; and {len(breaks) - 20} more" if len(breaks) > 20 else ""
            what = f"chain break at seq {format_seq_ranges(self.seqs)} ({shown}{more})"
        if self.malformed:
            what += f". Malformed events, left in hot: {'; '.join(self.malformed[:20])}"
        super().__init__(
            f"{what}. Nothing was deleted. Investigate the events named (audit-archive "
            "verify --deep shows the archived side), then re-run the day."
        )


class StorageError(AuditArchiveError):
    """Cold storage refused, lost or altered an object."""


class LeaseError(AuditArchiveError):
    """Another run holds the day and did not finish in time."""


def format_seq_ranges(seqs: list[int]) -> str:
    """Compress sorted seqs into '3, 7-9, 12' so every seq is named, briefly."""
    out: list[str] = []
    start = prev = None
    for s in seqs:
        if start is None:
            start = prev = s
        elif s == prev + 1:
            prev = s
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = s
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(out)


class LeaseLost(LeaseError):
    """A fenced write found the lease held by another run (or by another attempt of this
    one): the write was not made. The step turns it into a message saying what it did."""


class NoTransactions(StorageError):
    """MongoDB refused a transaction (a standalone server): fenced writes need one."""

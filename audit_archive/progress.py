"""Progress messages of long work, for the operator: what a step calls as it goes.

The steps (archive/) and the readers (audit/) both report progress, and Dagster ops
and the CLI both listen (the op logs to the run, the CLI prints), so the type lives
below all of them: a plain callable taking one message, never an event or a secret.
"""

from __future__ import annotations

from collections.abc import Callable

Log = Callable[[str], None]

# Events between two progress messages of a long step (extract, encode).
PROGRESS_EVERY = 50_000


def quiet(_: str) -> None:
    """The Log of callers that want no progress (the default)."""

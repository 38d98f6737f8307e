"""Progress on standard error for the long sub-commands (verify, restore, search, prove).

A ``click.progressbar`` fed absolute positions from the library's callbacks, from any
thread, redrawn at most every 0.1 s. It is shown only when standard error is a terminal
and ``--quiet`` is not given, so pipes, logs and tests see exactly the command's output.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

import click

CLEAR_LINE = "\r\033[K"


def shown(quiet: bool, stream: TextIO) -> bool:
    """Whether a bar is drawn: never with --quiet, only on a terminal."""
    return not quiet and stream.isatty()


class Progress:
    """One bar at a time, labelled by phase; a new label (or length) starts a new bar."""

    def __init__(
        self, *, quiet: bool = False, stream: TextIO | None = None, interval: float = 0.1
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.shown = shown(quiet, self.stream)
        self.interval = interval
        self._bar: Any = None  # click's ProgressBar, typed privately by click
        self._label = ""
        self._info = ""
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, done: int, total: int | None, info: str = "", label: str = "") -> None:
        """``done`` of ``total`` (None: unknown, a running count), ``info`` after the bar."""
        if not self.shown:
            return
        with self._lock:
            now = time.monotonic()
            fresh = self._bar is None or label != self._label or total != self._bar.length
            final = total is not None and done >= total
            if not (fresh or final) and now - self._last < self.interval:
                return
            self._last = now
            if fresh:
                self._finish()
                self._start(label, total)
            self._info = info
            bar = self._bar
            if done > bar.pos:
                bar.update(done - bar.pos)
            else:
                bar.render_progress()

    def echo(self, message: str) -> None:
        """A line of the command's own output, printed above the bar."""
        with self._lock:
            if self._bar is not None:
                self.stream.write(CLEAR_LINE)
            click.echo(message, file=self.stream)  # the bar returns with its next change

    def close(self) -> None:
        with self._lock:
            self._finish()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, label: str, total: int | None) -> None:
        self._label = label
        self._bar = click.progressbar(
            length=total,
            label=label,
            file=self.stream,
            show_pos=total is None,
            item_show_func=lambda _item: self._info,
            width=30,
        )
        self._bar.__enter__()

    def _finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def mib(done: int, total: int) -> str:
    return f"{done / 2**20:.1f}/{total / 2**20:.1f} MiB"

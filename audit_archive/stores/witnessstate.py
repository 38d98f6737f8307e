"""The shipped witness's memory: per log origin, the latest checkpoint it cosigned.

One JSON file, ``{"logs": {"<origin>": {"size": n, "root": "<base64>", "note": "..."}}}``.
C2SP tlog-witness requires that checking the old size against the stored checkpoint and
storing the new one happen atomically, or two concurrent requests could roll the state
back. So every update runs under a lock held across read, check and write: a thread lock
for the requests of one process and ``flock`` on ``<state>.lock`` for two processes that
were (wrongly) given the same file. The file is replaced atomically (a temporary file,
fsync, rename, fsync of the folder) before the witness answers, so a crash or restart
keeps either the old state or the new one, never a mix, and never loses a cosigned size.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Cosigned:
    """The latest checkpoint the witness cosigned for one log."""

    size: int
    root: bytes
    note: str


class StateFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self._read()  # a damaged file stops the witness at start-up, not at a request

    def _read(self) -> dict[str, Cosigned]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise RuntimeError(f"the witness state {self.path} cannot be read: {e}") from None
        return {
            origin: Cosigned(int(v["size"]), base64.b64decode(v["root"]), str(v["note"]))
            for origin, v in data.get("logs", {}).items()
        }

    def _write(self, logs: dict[str, Cosigned]) -> None:
        data = {
            "logs": {
                origin: {
                    "size": c.size,
                    "root": base64.b64encode(c.root).decode("ascii"),
                    "note": c.note,
                }
                for origin, c in sorted(logs.items())
            }
        }
        tmp = f"{self.path}.tmp-{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, open(self.path + ".lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def get(self, origin: str) -> Cosigned | None:
        with self._locked():
            return self._read().get(origin)

    def update(
        self, origin: str, decide: Callable[[Cosigned | None], tuple[Cosigned | None, T]]
    ) -> T:
        """Run ``decide`` on the origin's stored checkpoint under the lock; when it returns
        a new checkpoint, store it durably before returning ``decide``'s answer."""
        with self._locked():
            logs = self._read()
            new, answer = decide(logs.get(origin))
            if new is not None:
                logs[origin] = new
                self._write(logs)
            return answer

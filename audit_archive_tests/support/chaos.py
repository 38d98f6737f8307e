"""Chaos: run a day's job in a child process and SIGKILL it at chosen or random moments.

Importing Dagster and the definitions costs seconds, and a chaos loop kills dozens of
runs, so a *zygote* process imports everything once and forks one child per run (the
way a fork server does). A child is an ordinary run of ``audit_archive_job`` for one
partition, in its own process with its own pid, so a kill is a real kill: no cleanup
handlers run, the lease is left behind (a re-run takes it over because the pid is dead),
staging files and half-done purges stay as they were.

The child writes a marker line (``enter <step>``) to a file as each archive step begins,
so the test knows which step every kill landed in. Nothing in the archive is changed for
this: the markers come from wrappers installed in the child only.

Protocol (one JSON object per line): the test writes ``{"env": {...}, "day": "...",
"markers": "/path"}`` to the zygote's stdin; the zygote answers ``{"pid": N}`` and, when
the child has been reaped, ``{"exit": N, "status": S}`` (S < 0: killed by signal -S).
"""

from __future__ import annotations

import faulthandler
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEPS = ("extract", "encode", "sign", "upload_and_confirm", "record", "purge")
ROOT = Path(__file__).resolve().parents[2]


# -- the test's side ------------------------------------------------------------------


@dataclass
class Attempt:
    pid: int
    day: str
    markers: Path
    status: int | None = None
    killed_in: str | None = None

    def steps_entered(self) -> list[str]:
        try:
            text = self.markers.read_text()
        except FileNotFoundError:
            return []
        return [line.split()[1] for line in text.splitlines() if line.startswith("enter ")]

    def last_step(self) -> str:
        steps = self.steps_entered()
        return steps[-1] if steps else "startup"


@dataclass
class Zygote:
    """A process that has imported the project and forks one child per run."""

    workdir: Path
    process: subprocess.Popen | None = None
    exits: dict[int, int] = field(default_factory=dict)
    _pids: queue.Queue = field(default_factory=queue.Queue)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _count: int = 0
    attempts: list[Attempt] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> Zygote:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audit_archive_tests.support.chaos"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / "zygote.log", "ab"),  # noqa: SIM115
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "pid" in message:
                self._pids.put(message["pid"])
            elif "exit" in message:
                with self._cond:
                    self.exits[message["exit"]] = message["status"]
                    self._cond.notify_all()

    def launch(self, env: dict[str, str], day: str) -> Attempt:
        assert self.process is not None and self.process.stdin is not None
        self._count += 1
        markers = self.workdir / f"attempt-{self._count:03d}-{day}.markers"
        self.process.stdin.write(
            json.dumps({"env": env, "day": day, "markers": str(markers)}) + "\n"
        )
        self.process.stdin.flush()
        pid = self._pids.get(timeout=60)
        attempt = Attempt(pid, day, markers)
        self.attempts.append(attempt)
        return attempt

    def wait(self, attempt: Attempt, timeout: float = 300) -> int:
        """Until the child has exited and been reaped (so its pid is dead)."""
        with self._cond:
            if not self._cond.wait_for(lambda: attempt.pid in self.exits, timeout):
                raise TimeoutError(f"run of {attempt.day} (pid {attempt.pid}) did not end")
            attempt.status = self.exits[attempt.pid]
        return attempt.status

    def kill(self, attempt: Attempt) -> str:
        """SIGKILL the child now; returns the step it was in."""
        try:
            os.kill(attempt.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait(attempt)
        attempt.killed_in = attempt.last_step() if attempt.status == -9 else None
        return attempt.killed_in or "finished"

    def kill_many(self, plans: list[tuple[Attempt, str, float]], timeout: float = 120) -> list[str]:
        """Like kill_when for several runs going at once: each (attempt, step, delay) is
        killed ``delay`` after it entered ``step``. Returns the steps the kills landed in;
        runs that ended first are reaped and skipped."""
        pending = {id(p[0]): [*p, None] for p in plans}  # attempt, step, delay, due
        landed = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            for key, plan in list(pending.items()):
                attempt, step, delay, due = plan
                if attempt.pid in self.exits:
                    self.wait(attempt)
                    del pending[key]
                elif due is None and step in attempt.steps_entered():
                    plan[3] = now + delay
                elif due is not None and now >= due:
                    hit = self.kill(attempt)
                    if hit != "finished":
                        landed.append(hit)
                    del pending[key]
            time.sleep(0.002)
        for attempt, *_ in pending.values():  # never reached its step in time
            self.kill(attempt)
        return landed

    def kill_when(
        self, attempt: Attempt, step: str, delay: float, timeout: float = 60
    ) -> str | None:
        """Wait until the child enters ``step``, sleep ``delay`` and kill it. Returns the
        step the kill landed in, or None when the run ended first (it is then reaped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if attempt.pid in self.exits:
                self.wait(attempt)
                return None
            if step in attempt.steps_entered():
                time.sleep(delay)
                landed = self.kill(attempt)
                return None if landed == "finished" else landed
            time.sleep(0.002)
        try:
            os.kill(attempt.pid, signal.SIGUSR1)  # its threads' stacks, into zygote.log
            time.sleep(1)
        except ProcessLookupError:
            pass
        log = (self.workdir / "zygote.log").read_text(errors="replace")[-6000:]
        raise TimeoutError(
            f"run of {attempt.day} (pid {attempt.pid}) never entered {step}; "
            f"steps: {attempt.steps_entered()}; the end of the zygote's log:\n{log}"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        for attempt in self.attempts:  # a run still going when the test ended
            if attempt.pid not in self.exits:
                try:
                    os.kill(attempt.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(30)
        except Exception:
            self.process.kill()
            self.process.wait(5)


# -- the zygote and its children ---------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """Runs in the forked child: one run of the job, markers as steps begin."""
    os.dup2(2, 1)  # stdout is the zygote's protocol: the run's output goes to its log
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks on demand, to the log
    os.environ.update(request["env"])
    fd = os.open(request["markers"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    from audit_archive.archive import signed_log, steps
    from audit_archive.definitions import defs

    def marked(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            os.write(fd, f"enter {name} {time.time():.3f}\n".encode())
            return fn(*args, **kwargs)

        return wrapper

    for name in STEPS:
        setattr(steps, name, marked(name, getattr(steps, name)))
    # The signed log's append (inside record_batch, with AUDIT_LOG_SIGNING_KEY set).
    signed_log.append = marked("append", signed_log.append)
    job = defs.resolve_job_def("audit_archive_job")
    result = job.execute_in_process(partition_key=request["day"], raise_on_error=False)
    os.write(fd, f"done {'success' if result.success else 'failure'}\n".encode())
    os._exit(0 if result.success else 1)


def main() -> None:
    # Everything heavy is imported once, before any fork; no client or thread exists yet.
    import audit_archive.definitions  # noqa: F401
    from audit_archive.archive import steps  # noqa: F401

    lock = threading.Lock()

    def say(message: dict[str, Any]) -> None:
        with lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    children: set[int] = set()
    done = threading.Event()

    def reap() -> None:
        while not (done.is_set() and not children):
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.01)
                continue
            children.discard(pid)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            say({"exit": pid, "status": code})

    threading.Thread(target=reap, name="reaper", daemon=True).start()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _child(request)
            finally:
                os._exit(3)
        children.add(pid)
        say({"pid": pid})
    done.set()
    deadline = time.monotonic() + 30
    while children and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    main()

"""Run one day's archive steps in a child process and die (SIGKILL-like ``os._exit``)
at a chosen point, as a crashed worker would, or pause there (SIGSTOP to itself: every
thread stops, as in a frozen VM) until the test sends SIGCONT. Used by the recovery and
stall tests.

    python -m audit_archive_tests.support.crash_runner DAY POINT
POINT: after-extract | after-encode | after-upload | after-record | mid-purge, or, with
the signed log on (AUDIT_LOG_SIGNING_KEY), inside its append: log-after-leaf |
log-after-entry | log-after-numbered-checkpoint | log-after-checkpoint |
log-mid-record-index | after-log, or, with witnesses (AUDIT_LOG_WITNESSES), inside the
witnessing: witness-mid-submission (one witness cosigned, the next not asked) |
witness-after-witnessed (log/witnessed/<size> written, head not yet) | witness-after-head
(the cosigned head written, nothing purged)
or a pause: stop-before-record | stop-before-log | stop-before-purge | stop-mid-purge (after
the first purge batch), or run (no pause: the test holds a request on the wire instead). A
run that pauses or runs through prints ``RESULT ok`` or ``RESULT error: <message>`` as its
last line (exit 0 or 1).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid

from audit_archive.archive import signed_log, steps, witnessing
from audit_archive.errors import AuditArchiveError
from audit_archive.format import layout
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive.stores.logstore import LogStore

# Where each log point dies: (what to wrap, a test on its arguments).
LOG_POINTS = {
    "log-after-leaf": ("insert_leaf", None),
    "log-after-entry": ("put_bytes", "/log/entries/"),
    "log-after-numbered-checkpoint": ("put_bytes", "/log/checkpoints/"),
    "log-after-checkpoint": ("put_bytes", "/log/checkpoint"),
    "log-mid-record-index": ("set_log_index", None),
}


def crash(day: object, point: str) -> subprocess.CompletedProcess:
    """Run this module for ``day`` in a child process that dies at ``point`` (exit 9)."""
    return subprocess.run(
        [sys.executable, "-m", "audit_archive_tests.support.crash_runner", str(day), point],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _die_after_fenced(stores: object, name: str) -> None:
    """Die right after the first fenced transaction that called ``LogStore.name`` has
    committed (dying inside it would leave it open, holding the lease document, until
    the server's transaction lifetime ends)."""
    called = {"yes": False}
    real = getattr(LogStore, name)

    def marking(self, *args, **kwargs):
        called["yes"] = True
        return real(self, *args, **kwargs)

    setattr(LogStore, name, marking)
    leases = stores.leases  # type: ignore[attr-defined]
    real_fenced = leases.fenced

    def fenced(*args, **kwargs):
        result = real_fenced(*args, **kwargs)
        if called["yes"]:
            os._exit(9)
        return result

    leases.fenced = fenced


def _die_after(obj: object, name: str, key_part: str | None) -> None:
    """Replace ``obj.name`` by a version that dies right after its first matching call."""
    real = getattr(obj, name)

    def dying(*args, **kwargs):
        result = real(*args, **kwargs)
        key = args[0] if args and isinstance(args[0], str) else ""
        folder = key_part is not None and key_part.endswith("/")
        if key_part is None or (key_part in key if folder else key.endswith(key_part)):
            os._exit(9)
        return result

    setattr(obj, name, dying)


def _die_in_witnessing(stores, point: str) -> None:
    """Kill the process at a step of ``witnessing.witness_head``."""
    if point == "witness-mid-submission":
        real_post = witnessing.witnessclient.post_add_checkpoint

        def post_then_die(*args, **kwargs):
            real_post(*args, **kwargs)
            os._exit(9)

        witnessing.witnessclient.post_add_checkpoint = post_then_die
    elif point == "witness-after-witnessed":
        _die_after(stores.cold, "put_bytes", "/log/witnessed/")
    elif point == "witness-after-head":
        real_put = stores.cold.put_bytes

        def put_then_die(key, data, *args, **kwargs):
            real_put(key, data, *args, **kwargs)
            if key.endswith("/log/checkpoint") and data.count("\u2014 ".encode()) >= 2:
                os._exit(9)

        stores.cold.put_bytes = put_then_die


STOP_POINTS = ("run", "stop-before-record", "stop-before-log", "stop-before-purge")
STOP_POINTS += ("stop-mid-purge",)


def _stop() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)  # resumes here on SIGCONT


def _after_first(obj: object, name: str, then: object) -> None:
    """Call ``then()`` right after the first call of ``obj.name`` returns."""
    real = getattr(obj, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            then()  # type: ignore[operator]
        return result

    setattr(obj, name, wrapper)


def main() -> None:
    day, point = layout.parse_day(sys.argv[1]), sys.argv[2]
    if point not in STOP_POINTS:
        _crash(day, point)
        return
    try:
        _run_pausing(day, point)
    except AuditArchiveError as e:
        print(f"RESULT error: {e}", flush=True)
        os._exit(1)
    print("RESULT ok", flush=True)
    os._exit(0)


def _run_pausing(day, point: str) -> None:
    """The whole day, pausing at ``point``: what a frozen worker does when it thaws."""
    settings = Settings.from_env()
    stores = open_stores(settings)
    owner = f"stall-{uuid.uuid4()}"
    x = steps.extract(stores, day, owner, dt.datetime.now(dt.UTC))
    assert isinstance(x, steps.Extracted), x
    encoded = steps.encode(x, settings.cold_prefix, settings.purge_batch_size)
    signed = steps.sign(encoded, settings.cold_prefix, settings.signing_key.get_secret_value())
    uploaded = steps.upload_and_confirm(stores, encoded, signed)
    if point == "stop-before-record":
        _stop()
    recorded = steps.record(stores, encoded, signed, uploaded, owner)
    if point == "stop-before-log":
        _stop()
    signed_log.append(stores, owner)
    if point == "stop-before-purge":
        _stop()
    if point == "stop-mid-purge":
        _after_first(stores.events, "delete_seq_run", _stop)
    steps.purge(stores, recorded)


def _crash(day, point: str) -> None:
    settings = Settings.from_env()
    stores = open_stores(settings)
    owner = f"crash-{uuid.uuid4()}"
    x = steps.extract(stores, day, owner, dt.datetime.now(dt.UTC))
    assert isinstance(x, steps.Extracted), x
    if point == "after-extract":
        os._exit(9)
    encoded = steps.encode(x, settings.cold_prefix, settings.purge_batch_size)
    if point == "after-encode":
        os._exit(9)
    signed = steps.sign(encoded, settings.cold_prefix, settings.signing_key.get_secret_value())
    uploaded = steps.upload_and_confirm(stores, encoded, signed)
    if point == "after-upload":
        os._exit(9)
    recorded = steps.record(stores, encoded, signed, uploaded, owner)
    if point == "after-record":
        os._exit(9)
    if point in LOG_POINTS:
        name, key_part = LOG_POINTS[point]
        if name == "put_bytes":
            _die_after(stores.cold, name, key_part)
        else:
            _die_after_fenced(stores, name)
    if point.startswith("witness-"):
        _die_in_witnessing(stores, point)
    if signed_log.append(stores, owner) is None and point.startswith("log"):
        raise SystemExit(f"{point} needs AUDIT_LOG_SIGNING_KEY")
    if point == "after-log":
        os._exit(9)
    if point == "mid-purge":
        calls = {"n": 0}
        real = stores.events.delete_seq_run

        def dying(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                os._exit(9)
            return real(*args, **kwargs)

        stores.events.delete_seq_run = dying  # type: ignore[method-assign]
    steps.purge(stores, recorded)
    os._exit(0)


if __name__ == "__main__":
    main()

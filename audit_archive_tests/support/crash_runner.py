"""Run one day's archive steps in a child process and die (SIGKILL-like ``os._exit``)
at a chosen point, as a crashed worker would. Used by the recovery tests.

    python -m audit_archive_tests.support.crash_runner DAY POINT
POINT: after-extract | after-encode | after-upload | after-record | mid-purge, or, with
the signed log on (AUDIT_LOG_SIGNING_KEY), inside its append: log-after-leaf |
log-after-entry | log-after-numbered-checkpoint | log-after-checkpoint |
log-mid-record-index | after-log
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid

from audit_archive.archive import signed_log, steps
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


def main() -> None:
    day, point = layout.parse_day(sys.argv[1]), sys.argv[2]
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
    uploaded = steps.upload_and_confirm(
        stores, steps.sign(encoded, settings.cold_prefix, settings.signing_key.get_secret_value())
    )
    if point == "after-upload":
        os._exit(9)
    recorded = steps.record(stores, uploaded, owner)
    if point == "after-record":
        os._exit(9)
    if point in LOG_POINTS:
        name, key_part = LOG_POINTS[point]
        target = stores.cold if name == "put_bytes" else LogStore
        _die_after(target, name, key_part)
    if signed_log.append(stores, owner) is None and point.startswith("log"):
        raise SystemExit(f"{point} needs AUDIT_LOG_SIGNING_KEY")
    if point == "after-log":
        os._exit(9)
    if point == "mid-purge":
        calls = {"n": 0}
        real = stores.hot.delete_seq_run

        def dying(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                os._exit(9)
            return real(*args, **kwargs)

        stores.hot.delete_seq_run = dying  # type: ignore[method-assign]
    steps.purge(stores, recorded)
    os._exit(0)


if __name__ == "__main__":
    main()

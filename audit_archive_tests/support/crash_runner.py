"""Run one day's archive steps in a child process and die (SIGKILL-like ``os._exit``)
at a chosen point, as a crashed worker would. Used by the recovery tests.

    python -m audit_archive_tests.support.crash_runner DAY POINT
POINT: after-extract | after-encode | after-upload | after-record | mid-purge
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid

from audit_archive.archive import steps
from audit_archive.format import layout
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores


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
        stores, steps.sign(encoded, settings.cold_prefix, settings.signing_key)
    )
    if point == "after-upload":
        os._exit(9)
    recorded = steps.record(stores, uploaded, owner)
    if point == "after-record":
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

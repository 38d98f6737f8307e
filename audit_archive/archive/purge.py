"""Step 6: delete from hot exactly the events the recorded part holds (seq runs checked
by count inside a transaction, or exact _ids).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from audit_archive import timing
from audit_archive.archive import signed_log
from audit_archive.archive.extract import iter_staged_events
from audit_archive.archive.leases import LeaseKeeper, release
from audit_archive.archive.results import Purged, Recorded
from audit_archive.progress import Log, quiet
from audit_archive.stores.clients import Stores

# -- step 6: purge ------------------------------------------------------------------


def purge(stores: Stores, recorded: Recorded, log: Log = quiet) -> Purged:
    """Delete exactly the recorded part's events from hot, in bounded batches."""
    ref, count = recorded.ref, recorded.record["eventCount"]
    signed_log.require_logged(stores, ref.day, ref.part)  # with the log on: covered first
    deleted = fallbacks = 0
    keeper = LeaseKeeper(stores, ref.day, ref.owner, ref.lease_token, "purge_hot")
    with keeper, timing.timed("purge"):
        # Read under the lease: a run that took the day over removes our staging files.
        runs = json.loads(Path(ref.runs_path).read_text())
        for i, (lo, hi, n) in enumerate(runs, 1):
            keeper.check()
            # Fenced: each batch is deleted in one transaction with the lease check, so a
            # run that lost the lease while stalled deletes nothing more.
            if stores.events.delete_seq_run(ref.day, lo, hi, n, keeper.fence):
                deleted += n
            else:  # something else matches the run: exact ids
                fallbacks += 1
                ids = _ids_in_run(ref.events_path, lo, hi)
                deleted += stores.events.delete_ids(ids, keeper.fence)
            keeper.changes[:] = [
                f"deleted {deleted:,} of the {count:,} events of its recorded part "
                f"{ref.part} from hot (all of them in the part's archived object)"
            ]
            if i % 20 == 0:
                log(f"purged {deleted:,} of {count:,} events of {ref.day}")
    release(stores, ref.day, ref.owner, ref.lease_token)
    shutil.rmtree(ref.workdir, ignore_errors=True)
    return Purged(ref, deleted, len(runs), fallbacks)


def _ids_in_run(events_path: str, lo: int, hi: int) -> list[Any]:
    return [d["_id"] for d in iter_staged_events(events_path) if lo <= d["seq"] <= hi]

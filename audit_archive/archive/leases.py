"""A day is claimed with a lease in Mongo before anything is written, and each step
re-checks it, so racing runs of a day give one result.
"""

from __future__ import annotations

import threading
import time

from audit_archive.errors import LeaseError
from audit_archive.progress import Log, quiet
from audit_archive.stores.clients import Stores

# -- leases -------------------------------------------------------------------------


class LeaseKeeper:
    """Holds the day's lease for the duration of a step, renewing it in the background.

    ``lost`` turns true if a renewal fails (another run took over after we stalled); the
    step checks it before every irreversible action.
    """

    def __init__(self, stores: Stores, day: str, owner: str) -> None:
        self.hot = stores.hot
        self.seconds = stores.settings.lease_seconds
        self.day, self.owner = day, owner
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.hot.renew_lease(self.day, self.owner, self.seconds):
                    self.lost = True
                    return
            except Exception:  # a blip: the next beat tries again before expiry
                continue

    def check(self) -> None:
        if self.lost or not self.hot.renew_lease(self.day, self.owner, self.seconds):
            self.lost = True
            raise LeaseError(
                f"run lost the lease on {self.day} (another run took it over); it stopped "
                "before changing anything further. Re-run the day if it is not archived."
            )

    def __enter__(self) -> LeaseKeeper:
        self.check()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="lease-renewal")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def acquire_lease(
    stores: Stores, day: str, owner: str, wait_seconds: float, log: Log = quiet
) -> None:
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        lease = stores.hot.acquire_lease(day, owner, stores.settings.lease_seconds)
        if lease.owner == owner:
            return
        if time.monotonic() >= deadline:
            raise LeaseError(
                f"{day} is being archived by run {lease.owner} (on {lease.host}); it did not "
                f"finish within {wait_seconds:.0f}s. Wait for it, or re-run once it has ended."
            )
        if not announced:
            log(f"{day} is being archived by run {lease.owner}; waiting for it to finish")
            announced = True
        time.sleep(0.5)


def release(stores: Stores, day: str, owner: str) -> None:
    try:
        stores.hot.release_lease(day, owner)
    except Exception:  # the lease expires by itself
        pass

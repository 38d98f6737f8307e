"""A day is claimed with a lease in Mongo before anything is written, and each step
re-checks it, so racing runs of a day give one result.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from audit_archive.errors import LeaseError, LeaseLost
from audit_archive.progress import Log, quiet
from audit_archive.stores.clients import Stores
from audit_archive.stores.leasestore import Fence, Lease, lease_id

# -- leases -------------------------------------------------------------------------


class LeaseKeeper:
    """Holds the day's lease for the duration of a step, renewing it in the background.

    ``lost`` turns true if a renewal fails (another run took over after we stalled); the
    step checks it before every irreversible action, and every write that must not come
    from a run without the lease is made through ``fence`` (stores.leasestore: checked
    in the same transaction as the write), because a check is only true when made.
    ``changes`` says what the step changed so far, so the message of a run that lost its
    lease says truthfully what it did and did not do.
    """

    def __init__(
        self, stores: Stores, day: dt.date | str, owner: str, token: str, step: str
    ) -> None:
        self.leases = stores.leases
        self.seconds = stores.settings.lease_seconds
        self.day, self.owner, self.token, self.step = day, owner, token, step
        self.fence = Fence(lease_id(day), owner, token, self.seconds)
        self.changes: list[str] = []
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.leases.renew_lease(self.day, self.owner, self.seconds, self.token):
                    self.lost = True
                    return
            except Exception:  # a blip: the next beat tries again before expiry
                continue

    def lost_error(self) -> LeaseError:
        what = self.day if self.day != "signed-log" else "the signed log"
        done = "; ".join(self.changes) if self.changes else "changed nothing"
        return LeaseError(
            f"run lost the lease on {what} (another run took it over while this one was "
            f"stalled). In {self.step}, before it noticed, this run {done}. It recorded, "
            "logged and deleted nothing after losing the lease: those writes are fenced by "
            "the lease, and objects are only written where none is, or replaced by the "
            "lease holder. Re-run the day if it is not archived."
        )

    def check(self) -> None:
        if self.lost or not self.leases.renew_lease(self.day, self.owner, self.seconds, self.token):
            self.lost = True
            raise self.lost_error()

    def __enter__(self) -> LeaseKeeper:
        self.check()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="lease-renewal")
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if isinstance(exc, LeaseLost):  # a fenced write found another holder
            self.lost = True
            raise self.lost_error() from None


def acquire_lease(
    stores: Stores, day: dt.date | str, owner: str, wait_seconds: float, log: Log = quiet
) -> Lease:
    """The lease, once this run holds it (its token fences the run's writes)."""
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        lease = stores.leases.acquire_lease(day, owner, stores.settings.lease_seconds)
        if lease.owner == owner:
            return lease
        if time.monotonic() >= deadline:
            raise LeaseError(
                f"{day} is being archived by run {lease.owner} (on {lease.host}); it did not "
                f"finish within {wait_seconds:.0f}s. Wait for it, or re-run once it has ended."
            )
        if not announced:
            log(f"{day} is being archived by run {lease.owner}; waiting for it to finish")
            announced = True
        time.sleep(0.5)


def release(stores: Stores, day: dt.date | str, owner: str, token: str | None = None) -> None:
    try:
        stores.leases.release_lease(day, owner, token)
    except Exception:  # the lease expires by itself
        pass

"""The six steps of one day's archive, in the order the Dagster ops call them.

Safety rules, in the order they bite:
- a day is claimed with a lease in Mongo before anything is written, and each step
  re-checks it, so racing runs of a day give one result (``leases``);
- events are deleted only after their part is uploaded, confirmed and recorded, and
  only the events that part holds (``purge``);
- a re-run first finishes any purge an earlier run left half done (membership read back
  from the recorded, checksum-verified object), then archives what is left as the next
  part, so every crash point converges (``extract``).

What each step returns is in ``results``: the day's ``PartRef`` plus that step's facts.
"""

from audit_archive.archive.encode import encode
from audit_archive.archive.extract import extract
from audit_archive.archive.leases import release
from audit_archive.archive.publish import record, sign, upload_and_confirm
from audit_archive.archive.purge import purge
from audit_archive.archive.results import (
    Encoded,
    Extracted,
    PartRef,
    Purged,
    Recorded,
    Signed,
    Skip,
    Uploaded,
)

__all__ = [
    "Encoded",
    "Extracted",
    "PartRef",
    "Purged",
    "Recorded",
    "Signed",
    "Skip",
    "Uploaded",
    "encode",
    "extract",
    "purge",
    "record",
    "release",
    "sign",
    "upload_and_confirm",
]

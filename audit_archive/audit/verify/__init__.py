"""Verify the archive like an auditor: one status per day, and the findings behind it.

The checks are plain functions over ``Stores``; the CLI (``audit-archive verify``) and
the Dagster job (``audit_verify_job``) only present the :class:`Report`.

What is read, and why:

- **Manifest-only (default).** Every part's manifest is downloaded (they are small; read
  concurrently), its signature checked with the known keys and its sha256 compared with
  the batch record; the day's folder is listed so objects and records can be matched;
  each JSONL.gz is HEAD-ed: its size is compared, and its SHA-256 when the server keeps
  the checksum the archiver uploads with. An object the HEAD cannot confirm (no
  checksum, rewritten after archiving, a checksum that is not its SHA-256) is read, that
  object alone, before anything is said: ``modified`` means proven different. The chain
  is checked across parts and days from the manifests' ``chainEdges`` (the auditor's
  view: S3 alone), plus the few hot events on the other side of a link (the tier
  boundary); a break is re-checked against the current state before it is reported.
- **Deep (``--deep``).** Also streams every JSONL.gz (bounded memory: one chunk and one
  line at a time), checks its sha256 and size, re-hashes every event, checks every link
  inside the part, and recomputes ``chainEdges``, the counts, the seq and hash bounds
  and the Merkle root from the content.

Batch records are used for what they are: the archiver's own account of what it wrote
(kept in Mongo, a different trust domain from the bucket). A manifest that disagrees
with its record is ``modified``; records of days outside the requested range provide the
chain's context there, so a narrow range does not cost a full-archive read.

The steps, one module each: ``span`` (which days), ``parts`` (what the bucket and the
records hold), ``checks`` (each part without its events), ``chain_walk`` (the walk over
the parts' chain edges) and ``chain_step`` (where the edges come from, the walk against
hot, the re-check, breaks charged to days), ``content`` (``--deep``), ``hot_checks`` (due
events still in hot, events of no day, runs in progress), ``report`` (statuses and
findings), ``run`` (``verify()``, the steps in order).
"""

from audit_archive.audit.verify.checks import REWRITE_MARGIN
from audit_archive.audit.verify.content import Progress
from audit_archive.audit.verify.report import (
    CLEAN,
    PRECEDENCE,
    DayReport,
    Finding,
    RangeError,
    ReadReason,
    Report,
    Status,
    day_status,
)
from audit_archive.audit.verify.run import (
    DEEP_WORKERS,
    MANIFEST_WORKERS,
    verify,
)

__all__ = [
    "CLEAN",
    "DEEP_WORKERS",
    "MANIFEST_WORKERS",
    "PRECEDENCE",
    "REWRITE_MARGIN",
    "DayReport",
    "Finding",
    "Progress",
    "RangeError",
    "ReadReason",
    "Report",
    "Status",
    "day_status",
    "verify",
]

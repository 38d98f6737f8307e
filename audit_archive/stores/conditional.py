"""S3 conditional writes: every object the archive writes is written once (SPEC 3).

A new object is written with ``If-None-Match: *`` (PutObject, CompleteMultipartUpload):
the store refuses it (412 Precondition Failed) when any object is at the key, so a run
that stalled with a PUT in flight can never land it on top of another run's object. An
object an attempt left without recording it is replaced only with ``If-Match: <ETag>``
of the object that was checked, so a replacement never lands on anything else.

A store that ignores these headers would make all of that void without a sound, so
``probe`` checks at start-up that the store really refuses: it writes one small object,
``<prefix>/probe/conditional-writes`` (written once, then every later probe is refused),
and expects 412 for a second ``If-None-Match: *`` PutObject, for an ``If-Match`` PutObject
with an ETag the object does not have, and for an ``If-None-Match: *`` multipart
completion (whose upload is then aborted). The probe never deletes anything.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from typing import Any

from botocore.exceptions import ClientError

CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict")
PROBE_BODY = (
    b"audit-archive: written once, to check that this store refuses conditional writes "
    b"(If-None-Match, If-Match) it must refuse. Keep it; the archive never deletes.\n"
)
NO_SUCH_ETAG = '"00000000000000000000000000000000"'


class WriteConflict(Exception):
    """The store refused a conditional write: an object is at the key (If-None-Match),
    or not the one whose ETag was given (If-Match). Nothing was written."""


def condition(if_match: str | None) -> dict[str, str]:
    """The boto3 parameter of a conditional write: replace exactly ``if_match``, or
    write only where no object is."""
    return {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}


def refused(error: ClientError, if_match: str | None) -> bool:
    """Whether ``error`` is the store refusing the condition (412; AWS's 409
    ConditionalRequestConflict for a concurrent write; 404 for If-Match on a key that
    has no object)."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(error.response.get("Error", {}).get("Code", ""))
    if status == 412 or code in CONFLICT_CODES:
        return True
    return bool(if_match) and (status == 404 or code in ("NoSuchKey", "NotFound"))


def probe(cold: Any, key: str) -> str | None:
    """None when the store refuses what it must refuse; otherwise what it ignored.
    ``cold`` is a stores.cold.ColdStore."""
    for attempt in range(2):  # the first creates the object unless an earlier probe did
        try:
            cold.put_bytes(key, PROBE_BODY, "text/plain; charset=utf-8")
        except WriteConflict:
            break
        if attempt == 1:
            return "it overwrote an object with PutObject and If-None-Match: *"
    try:
        cold.put_bytes(key, PROBE_BODY, "text/plain; charset=utf-8", if_match=NO_SUCH_ETAG)
        return "it overwrote an object with PutObject and an If-Match ETag it does not have"
    except WriteConflict:
        pass
    if not _multipart_refused(cold, key):
        return "it completed a multipart upload over an object despite If-None-Match: *"
    return None


def _multipart_refused(cold: Any, key: str) -> bool:
    # A probe killed half way left its upload; one started in the last hour may be
    # another process's probe going on right now.
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for stale in cold.incomplete_uploads(key):
        if stale.get("Initiated") and stale["Initiated"] < an_hour_ago:
            cold.abort_upload(stale["Key"], stale["UploadId"])
    with tempfile.NamedTemporaryFile(prefix="audit-probe-") as f:
        f.write(PROBE_BODY)
        f.flush()
        try:  # through ColdStore like every S3 call; a refused upload is aborted there
            cold.put_multipart(key, f.name, "text/plain; charset=utf-8")
        except WriteConflict:
            return True
    return False

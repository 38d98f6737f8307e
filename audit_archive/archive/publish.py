"""Steps 3 to 5: sign the manifest, upload and confirm both objects, record the batch."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from audit_archive import timing
from audit_archive.archive.leases import LeaseKeeper
from audit_archive.archive.results import Encoded, Recorded, Signed, Uploaded
from audit_archive.errors import StorageError
from audit_archive.format import layout
from audit_archive.format.manifest import (
    PartSummary,
    build_manifest,
    key_id,
    manifest_bytes,
    sign_manifest,
)
from audit_archive.progress import Log, quiet
from audit_archive.stores.clients import Stores
from audit_archive.stores.cold import ChecksumNotKept, Confirmation, ObjectMismatch
from audit_archive.stores.conditional import WriteConflict

JSONL_CONTENT_TYPE = "application/gzip"
MANIFEST_CONTENT_TYPE = "application/json"


# -- step 3: sign ---------------------------------------------------------------------


def sign(encoded: Encoded, prefix: str, signing_key: str) -> Signed:
    """The part's manifest, signed with HMAC-SHA-256, written to ``ref.manifest_path``."""
    started = timing.clock()
    ref, s = encoded.ref, encoded.summary
    data = manifest_bytes(sign_manifest(build_manifest(s), signing_key))
    Path(ref.manifest_path).write_bytes(data)
    timing.add("sign", timing.clock() - started)
    return Signed(
        ref,
        manifest_key=layout.manifest_key(prefix, ref.day, ref.part),
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        manifest_bytes=len(data),
        key_id=key_id(signing_key),
    )


# -- step 4: upload and confirm ----------------------------------------------------------


def upload_and_confirm(
    stores: Stores, encoded: Encoded, signed: Signed, log: Log = quiet
) -> Uploaded:
    """Upload both objects (JSONL first, so a manifest never names a missing object) and
    confirm size and checksum. An identical object already there (an earlier attempt that
    crashed before recording) is confirmed, not rewritten. Every write is conditional
    (written once, SPEC 3): see ``_write_once``."""
    ref, s = signed.ref, encoded.summary
    started = dt.datetime.now(dt.UTC)
    with LeaseKeeper(stores, ref.day, ref.owner, ref.lease_token, "upload_and_confirm") as keeper:
        if any(r["part"] == ref.part for r in stores.batches.records(ref.day)):
            raise StorageError(
                f"part {ref.part} of {ref.day} was recorded by another run while this one "
                "worked; nothing was uploaded or deleted. Re-run the day to converge."
            )
        day_prefix = signed.manifest_key.rsplit("/", 1)[0] + "/"
        _abort_stale_uploads(stores, day_prefix, ref.day, log, started)
        objects = []
        if s.event_count:
            objects.append(
                _Object(
                    s.jsonl_key,
                    ref.jsonl_path,
                    s.jsonl_bytes,
                    s.jsonl_sha256,
                    JSONL_CONTENT_TYPE,
                )
            )
        objects.append(
            _Object(
                signed.manifest_key,
                ref.manifest_path,
                signed.manifest_bytes,
                signed.manifest_sha256,
                MANIFEST_CONTENT_TYPE,
            )
        )
        confirmations, skipped = [], []
        for obj in objects:
            keeper.check()
            confirmation, written = _write_once(stores, keeper, ref.day, obj, log)
            confirmations.append(confirmation)
            if not written:
                skipped.append(obj.key)
    return Uploaded(ref, tuple(confirmations), tuple(skipped))


@dataclass(frozen=True)
class _Object:
    key: str
    path: str
    size: int
    sha256: str
    content_type: str


def _write_once(
    stores: Stores, keeper: LeaseKeeper, day: dt.date, obj: _Object, log: Log
) -> tuple[Confirmation, bool]:
    """Put ``obj`` where no object is (If-None-Match: *); confirm one already there with
    the same bytes; replace one an attempt left without recording it only after checking
    that no batch record names it, and only that very object (If-Match: its ETag).
    Returns the confirmation and whether this run wrote the object."""
    cold = stores.cold
    head = cold.head(obj.key)
    if head is not None:
        try:
            with timing.timed("confirm"):
                confirmation = cold.confirm(obj.key, obj.size, obj.sha256, obj.path)
            log(f"{obj.key} is already in the bucket with the same bytes; not rewritten")
            return confirmation, False
        except (ObjectMismatch, ChecksumNotKept):
            pass  # different, or not confirmable as it is: replace it, if nothing names it
        if any(
            obj.key in (r.get("jsonlKey"), r.get("manifestKey"))
            for r in stores.batches.records(day)
        ):
            raise _refused(keeper, obj.key, "a batch record names it now")
        keeper.check()
    try:
        with timing.timed("upload"):
            layout = cold.put_file(
                obj.key,
                obj.path,
                obj.size,
                obj.sha256,
                obj.content_type,
                if_match=None if head is None else head["ETag"],
            )
    except WriteConflict:
        # Another run wrote the key since we looked. The same bytes are as good as ours.
        try:
            return cold.confirm(obj.key, obj.size, obj.sha256, obj.path), False
        except (ObjectMismatch, ChecksumNotKept):
            raise _refused(keeper, obj.key, "another run wrote it meanwhile") from None
    what = "wrote" if head is None else "replaced (an earlier attempt's, named by no record)"
    keeper.changes.append(f"{what} {obj.key}, which no batch record names")
    if head is not None:
        log(f"replaced {obj.key}, left by an earlier attempt that never recorded it")
    try:
        with timing.timed("confirm"):
            return cold.confirm(obj.key, obj.size, obj.sha256, obj.path, layout), True
    except ObjectMismatch as e:
        raise StorageError(
            f"upload not confirmed: {e}; this run {'; '.join(keeper.changes)} and recorded "
            "and deleted nothing"
        ) from None


def _refused(keeper: LeaseKeeper, key: str, why: str) -> StorageError:
    done = "; ".join(keeper.changes) if keeper.changes else "wrote nothing"
    return StorageError(
        f"{key} holds other bytes than this run's and {why}, so this run did not write "
        f"over it. In upload_and_confirm this run {done}; it recorded and deleted nothing. "
        "Re-run the day to converge (audit-archive verify shows the day)."
    )


# How far the store's clock may be behind this run's when it dates a multipart upload.
CLOCK_SKEW = dt.timedelta(seconds=30)


def _abort_stale_uploads(
    stores: Stores, day_prefix: str, day: dt.date, log: Log, started: dt.datetime
) -> None:
    """A run killed in the middle of a multipart upload leaves it incomplete (billed,
    invisible): abort what an earlier, dead attempt left under the day's prefix. Only
    uploads begun before this step ``started`` (less CLOCK_SKEW): a run that stalled
    here and resumed after another run took the lease over must not abort the new
    holder's upload in flight (it began after this step did). A dead attempt's upload is
    older than the lease it held had to expire. Best effort: without the permission to
    list uploads, a bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans them up."""
    try:
        uploads = stores.cold.incomplete_uploads(day_prefix)
    except ClientError as e:
        log(f"could not list incomplete uploads of {day} ({e.response['Error'].get('Code')})")
        return
    cutoff = started - CLOCK_SKEW
    stale = [u for u in uploads if u.get("Initiated") is None or u["Initiated"] < cutoff]
    for upload in stale:
        stores.cold.abort_upload(upload["Key"], upload["UploadId"])
    if stale:
        log(f"aborted {len(stale)} incomplete upload(s) an earlier attempt at {day} left")
    if len(stale) < len(uploads):
        log(f"left {len(uploads) - len(stale)} upload(s) of {day} begun after this step started")


# -- step 5: record -----------------------------------------------------------------


def batch_record(
    encoded: Encoded, signed: Signed, uploaded: Uploaded, run_id: str, archived_at: dt.datetime
) -> dict[str, Any]:
    """The part's batch record (SPEC section 4), from what the steps before found."""
    s = encoded.summary
    return {
        "day": s.day,
        "part": s.part,
        "archivedAt": archived_at,
        "runId": run_id,
        "startSeq": s.start_seq,
        "endSeq": s.end_seq,
        "eventCount": s.event_count,
        "jsonlKey": s.jsonl_key,
        "manifestKey": signed.manifest_key,
        "jsonlSha256": s.jsonl_sha256,
        "manifestSha256": signed.manifest_sha256,
        "bytesCompressed": s.jsonl_bytes,
        "bytesUncompressed": s.jsonl_bytes_uncompressed,
        # Beyond the SPEC's fields: what later runs need without reading S3.
        "merkleRoot": s.merkle_root,
        "chainEdges": s.chain_edges,
        "keyId": signed.key_id,
        **_layout_fields(s, uploaded),
    }


def _layout_fields(s: PartSummary, uploaded: Uploaded) -> dict[str, Any]:
    """How the events object was uploaded (cold.UploadLayout), which decides the checksum
    the server keeps for it: verify compares that checksum under the layout it was made
    with, whatever AUDIT_COLD_PART_SIZE_MIB says now. jsonlParts 0: no object (a day
    without events); None: not known (an object an earlier attempt left, confirmed by
    reading it back on a server that keeps no checksum)."""
    if not s.event_count:
        return {"jsonlParts": 0, "jsonlPartSize": 0, "jsonlCompositeSha256": None}
    layouts = [c.layout for c in uploaded.confirmations if c.key == s.jsonl_key and c.layout]
    if not layouts:
        return {"jsonlParts": None, "jsonlPartSize": None, "jsonlCompositeSha256": None}
    return layouts[0].record_fields()


def record(
    stores: Stores, encoded: Encoded, signed: Signed, uploaded: Uploaded, run_id: str
) -> Recorded:
    """Insert the part's batch record, fenced by the day's lease: from here on the part
    counts as archived. The same record already there (an earlier attempt) is fine."""
    ref = uploaded.ref
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    doc = batch_record(encoded, signed, uploaded, run_id, now)
    with (
        LeaseKeeper(stores, ref.day, ref.owner, ref.lease_token, "record_batch") as keeper,
        timing.timed("record"),
    ):
        # Fenced: inserted in one transaction with the lease check, so a run that lost
        # the lease while stalled can never record (stores.leasestore).
        inserted = stores.batches.insert_record(doc, keeper.fence)
    if not inserted:
        existing = next(r for r in stores.batches.records(ref.day) if r["part"] == doc["part"])
        if existing.get("manifestSha256") != doc["manifestSha256"]:
            raise StorageError(
                f"part {doc['part']} of {ref.day} is already recorded with a different "
                "manifest; nothing was deleted. Run audit-archive verify for the day."
            )
        doc = existing
    return Recorded(ref, doc, inserted)

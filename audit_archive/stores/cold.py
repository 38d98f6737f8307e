"""S3-compatible cold storage: put with checksums, confirm, read, list. Never deletes.

Every PUT carries its SHA-256 (``x-amz-checksum-sha256``), so the server rejects a body
corrupted in flight; confirmation then compares size and checksum from a HEAD, and reads
the object back when a server does not report checksums (``AUDIT_COLD_CONFIRM``).
Multipart uploads that fail are aborted, so no incomplete upload is left behind. The job
needs no s3:DeleteObject. Every write is conditional (``stores.conditional``): written once.

This module is the one place that decides what "object not found" is (``is_not_found``)
and how a multipart object's checksum is composed (``UploadLayout``, ``composite_sha256``,
``checksum_confirms``): the run and verify both ask it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from s3transfer.utils import ReadFileChunk

from audit_archive.errors import StorageError
from audit_archive.stores.conditional import WriteConflict, condition, refused

CHUNK = 1 << 20
SINGLE_PUT_MAX = 5 << 30  # S3's largest PutObject: a replacement up to it is one PUT
_NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")
_NO_BUCKET_CODES = ("404", "NoSuchBucket", "NotFound")


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


class ConfirmMode(StrEnum):
    """How an upload is confirmed (``AUDIT_COLD_CONFIRM``)."""

    AUTO = "auto"  # the server's SHA-256 when it reports one, else read the object back
    CHECKSUM = "checksum"  # the server's SHA-256 only: a server that keeps none fails the run
    READBACK = "readback"  # always read the object back and hash its bytes


@dataclass(frozen=True)
class UploadLayout:
    """How an object was uploaded, which decides the checksum S3 keeps for it: a single
    PUT keeps the object's SHA-256; a multipart upload keeps the SHA-256 of its parts'
    SHA-256 digests (AWS appends "-<parts>", moto and others do not)."""

    parts: int  # 1: a single PUT
    part_size: int  # bytes of every part but the last (a single PUT: the object's size)
    composite_sha256: str | None = None  # hex; multipart only

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> UploadLayout | None:
        """The layout a batch record names (``jsonlParts``, ``jsonlPartSize``,
        ``jsonlCompositeSha256``), or None for a record that does not say."""
        parts, size = record.get("jsonlParts"), record.get("jsonlPartSize")
        if not isinstance(parts, int) or not isinstance(size, int) or parts < 1:
            return None
        composite = record.get("jsonlCompositeSha256")
        return cls(parts, size, composite if isinstance(composite, str) else None)

    def record_fields(self) -> dict[str, Any]:
        return {
            "jsonlParts": self.parts,
            "jsonlPartSize": self.part_size,
            "jsonlCompositeSha256": self.composite_sha256,
        }


def parts_of(size: int, part_size: int) -> int:
    """How many parts an object of ``size`` bytes is uploaded in (1: a single PUT)."""
    return 1 if size <= part_size else -(-size // part_size)


def composite_sha256(part_digests: Iterable[bytes]) -> str:
    """Hex SHA-256 of the parts' raw SHA-256 digests, in part order: a multipart object's
    checksum as S3 keeps it (base64, before any "-<parts>" suffix)."""
    return hashlib.sha256(b"".join(part_digests)).hexdigest()


class PartHasher:
    """Fed an object's bytes in order, gives its SHA-256 and, for a part size, the
    composite checksum a multipart upload of it has: verify reads an object once and can
    compare both."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.size = 0
        self._whole = hashlib.sha256()
        self._part = hashlib.sha256()
        self._in_part = 0
        self._digests: list[bytes] = []

    def update(self, data: bytes) -> None:
        self._whole.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self.part_size:
                self._digests.append(self._part.digest())
                self._part, self._in_part = hashlib.sha256(), 0

    def sha256(self) -> str:
        return self._whole.hexdigest()

    def composite_sha256(self) -> str:
        tail = [self._part.digest()] if self._in_part or not self._digests else []
        return composite_sha256([*self._digests, *tail])


def checksum_confirms(reported: str | None, sha256: str, layout: UploadLayout | None) -> bool:
    """True when the checksum the server keeps (``ChecksumSHA256`` of a HEAD) proves the
    object holds the bytes whose SHA-256 is ``sha256``, uploaded as ``layout`` (None: not
    known). False means only "not confirmed": the server keeps no checksum, or one that
    does not match the way the object is known to have been uploaded (it may have been
    rewritten in other parts). Only the object's bytes prove it different."""
    if not reported:
        return False
    base = reported.split("-", 1)[0]
    if base == b64(sha256):
        return True
    return bool(layout and layout.composite_sha256 and base == b64(layout.composite_sha256))


def is_not_found(error: ClientError) -> bool:
    """The one decision of "the object (or bucket) is not there", for every caller:
    servers answer a GET with NoSuchKey and a HEAD with a bare 404."""
    return _status(error) == 404 or _code(error) in (*_NOT_FOUND_CODES, *_NO_BUCKET_CODES)


@dataclass(frozen=True)
class Confirmation:
    key: str
    bytes: int
    sha256: str
    method: str  # "checksum" (server-computed SHA-256) or "read-back"
    layout: UploadLayout | None = None  # how it was uploaded, when the checksum tells


class ObjectMismatch(Exception):
    """An object in the bucket differs from what was written."""


class ChecksumNotKept(StorageError):
    """AUDIT_COLD_CONFIRM=checksum, and the server reported no checksum to confirm with."""


class BucketProblem(StrEnum):
    """Why the bucket cannot be used, as a type (the caller maps it to a variable)."""

    MISSING = "missing"
    DENIED = "denied"
    NO_OBJECT_LOCK = "no-object-lock"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class BucketError:
    problem: BucketProblem
    message: str


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _part_digests(path: str, part_size: int) -> Iterator[tuple[int, int, bytes]]:
    """(offset, length, SHA-256) of each multipart part, read CHUNK by CHUNK."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for offset in range(0, size, part_size):
            length = min(part_size, size - offset)
            sha, left = hashlib.sha256(), length
            while left:
                piece = f.read(min(CHUNK, left))
                if not piece:
                    raise OSError(f"{path} shrank while being uploaded")
                sha.update(piece)
                left -= len(piece)
            yield offset, length, sha.digest()


class ColdStore:
    """One bucket through one boto3 client."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        sse: bool = False,
        lock_mode: str | None = None,
        lock_days: int | None = None,
        part_size: int = 64 << 20,
        confirm_mode: ConfirmMode = ConfirmMode.AUTO,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.sse = sse
        self.lock_mode = lock_mode
        self.lock_days = lock_days
        self.part_size = part_size
        self.confirm_mode = ConfirmMode(confirm_mode)

    # -- writes -------------------------------------------------------------------

    def _put_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.sse:
            args["ServerSideEncryption"] = "AES256"
        if self.lock_mode:
            args["ObjectLockMode"] = self.lock_mode
            args["ObjectLockRetainUntilDate"] = self._retain_until()
        return args

    def _retain_until(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(days=self.lock_days or 1)

    def _ensure_retention(self, key: str, head: Mapping[str, Any]) -> None:
        """Under Object Lock, a confirmed object carries its retention. Every upload asks
        for it (the PUT, or CreateMultipartUpload, since S3 takes no lock headers on
        parts), but a server may drop it from a multipart upload (moto does) and an
        object an earlier attempt left may lack it: then it is set on the object's
        version with PutObjectRetention. A HEAD shows the retention only to a user
        allowed s3:GetObjectRetention; without it, this sets it again, a few seconds
        later than the upload asked, which S3 allows in both modes (never shorter)."""
        if not self.lock_mode or head.get("ObjectLockMode"):
            return
        version = {"VersionId": head["VersionId"]} if head.get("VersionId") else {}
        self.client.put_object_retention(
            Bucket=self.bucket,
            Key=key,
            Retention={"Mode": self.lock_mode, "RetainUntilDate": self._retain_until()},
            **version,
        )

    def put_bytes(
        self, key: str, data: bytes, content_type: str, *, if_match: str | None = None
    ) -> None:
        """Write ``data`` where no object is (If-None-Match: *), or, with ``if_match``,
        over exactly the object with that ETag. WriteConflict: refused, nothing written."""
        self._put_object(
            key, data, len(data), hashlib.sha256(data).hexdigest(), content_type, if_match
        )

    def _put_object(
        self, key: str, body: Any, size: int, sha256: str, content_type: str, if_match: str | None
    ) -> None:
        """One conditional PutObject carrying its SHA-256 and the bucket's retention."""
        self._conditional(
            if_match,
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentLength=size,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=b64(sha256),
            **self._put_args(),
        )

    @staticmethod
    def _conditional(if_match: str | None, call: Any, **kwargs: Any) -> Any:
        try:
            return call(**kwargs, **condition(if_match))
        except ClientError as e:
            if refused(e, if_match):
                raise WriteConflict(f"{kwargs['Key']}: {e}") from None
            raise

    def put_file(
        self,
        key: str,
        path: str,
        size: int,
        sha256: str,
        content_type: str,
        *,
        if_match: str | None = None,
    ) -> UploadLayout:
        """Upload a file in one PUT, or in parts when larger than ``part_size``; returns
        how it was uploaded (which decides the checksum the server keeps). Written only
        where no object is, or with ``if_match`` over exactly that object (then in one PUT
        up to 5 GiB: the start-up probe checks If-Match on PutObject). WriteConflict:
        refused, nothing written."""
        single = parts_of(size, self.part_size) == 1
        if single or (if_match and size <= SINGLE_PUT_MAX):
            with open(path, "rb") as f:
                self._put_object(key, f, size, sha256, content_type, if_match)
            return UploadLayout(1, size)
        return self.put_multipart(key, path, content_type, if_match=if_match)

    def put_multipart(
        self, key: str, path: str, content_type: str, *, if_match: str | None = None
    ) -> UploadLayout:
        """Upload a file in parts of ``part_size`` (one part when it is smaller), the
        completion conditional like put_bytes; an upload that fails or is refused is
        aborted. The start-up probe uses it to see CompleteMultipartUpload refused.
        WriteConflict: refused, nothing written."""
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            **self._put_args(),
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, (offset, length, digest) in enumerate(
                _part_digests(path, self.part_size), 1
            ):
                checksum = base64.b64encode(digest).decode()
                # The part streams from the file: memory stays flat whatever the part size.
                body = ReadFileChunk.from_filename(path, offset, length, enable_callbacks=False)
                try:
                    res = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                        ContentLength=length,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=checksum,
                    )
                finally:
                    body.close()
                parts.append(
                    {"PartNumber": number, "ETag": res["ETag"], "ChecksumSHA256": checksum}
                )
            self._conditional(
                if_match,
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self.abort_upload(key, upload_id)
            raise
        digests = [base64.b64decode(part["ChecksumSHA256"]) for part in parts]
        return UploadLayout(len(parts), self.part_size, composite_sha256(digests))

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception:  # best effort; a lifecycle rule can also clean these up
            pass

    def incomplete_uploads(self, prefix: str = "") -> list[dict[str, Any]]:
        res = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return list(res.get("Uploads") or [])

    # -- reads --------------------------------------------------------------------

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as e:
            if is_not_found(e):
                return None
            raise

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            while chunk := body.read(chunk_size):
                yield chunk
        finally:
            body.close()

    def read_back_sha256(self, key: str) -> tuple[str, int]:
        sha = hashlib.sha256()
        size = 0
        for chunk in self.iter_chunks(key):
            sha.update(chunk)
            size += len(chunk)
        return sha.hexdigest(), size

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[dict[str, Any]]:
        """Objects under ``prefix`` in key order, from just after ``start_after``."""
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"StartAfter": start_after} if start_after else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **extra):
            yield from page.get("Contents") or ()

    # -- confirmation ---------------------------------------------------------------

    def confirm(
        self,
        key: str,
        size: int,
        sha256: str,
        path: str | None = None,
        layout: UploadLayout | None = None,
    ) -> Confirmation:
        """Existence, size and content, by the server's checksum or by reading the object
        back (``confirm_mode``); raises ObjectMismatch naming what differs.

        ``layout`` is how this run just uploaded it; without one (an object an earlier
        attempt left), ``path`` lets a multipart checksum be composed for ``part_size``."""
        head = self.head(key)
        if head is None:
            raise ObjectMismatch(f"{key} is not in bucket {self.bucket} after upload")
        if int(head["ContentLength"]) != size:
            raise ObjectMismatch(f"{key} has {head['ContentLength']} bytes, expected {size}")
        reported = head.get("ChecksumSHA256")
        if self.confirm_mode is not ConfirmMode.READBACK and reported:
            confirmed = self._layout_confirmed(reported, size, sha256, path, layout)
            if confirmed is None:
                raise ObjectMismatch(f"{key}: sha256 reported by the server differs")
            self._ensure_retention(key, head)
            return Confirmation(key, size, sha256, "checksum", confirmed)
        if self.confirm_mode is ConfirmMode.CHECKSUM:
            raise ChecksumNotKept(
                f"{key}: the server reports no SHA-256 checksum for the object, and "
                "AUDIT_COLD_CONFIRM=checksum confirms by nothing else. Set AUDIT_COLD_CONFIRM "
                "to auto (read back when the server keeps no checksum) or readback. Nothing "
                "was deleted."
            )
        actual, actual_size = self.read_back_sha256(key)
        if actual != sha256 or actual_size != size:
            raise ObjectMismatch(f"{key}: sha256 of the bytes read back differs")
        self._ensure_retention(key, head)
        return Confirmation(key, size, sha256, "read-back", layout)

    def _layout_confirmed(
        self,
        reported: str,
        size: int,
        sha256: str,
        path: str | None,
        layout: UploadLayout | None,
    ) -> UploadLayout | None:
        """The upload layout under which the reported checksum is this content's, or None
        when it is not (the object differs, or was uploaded in other parts)."""
        if reported.split("-", 1)[0] == b64(sha256):
            return UploadLayout(1, size)  # a full-object checksum: one PUT
        if layout is None and path is not None and parts_of(size, self.part_size) > 1:
            digests = [digest for _, _, digest in _part_digests(path, self.part_size)]
            layout = UploadLayout(len(digests), self.part_size, composite_sha256(digests))
        if layout is not None and layout.parts > 1 and checksum_confirms(reported, sha256, layout):
            return layout
        return None

    # -- bucket checks --------------------------------------------------------------

    def bucket_error(self) -> BucketError | None:
        """None when the bucket is reachable and usable; otherwise what is wrong, typed."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if is_not_found(e):
                return BucketError(BucketProblem.MISSING, f"bucket {self.bucket!r} does not exist")
            if _status(e) == 403:
                return BucketError(
                    BucketProblem.DENIED, f"access to bucket {self.bucket!r} is denied"
                )
            return BucketError(
                BucketProblem.UNUSABLE,
                f"bucket {self.bucket!r} cannot be used: {_code(e) or _status(e)}",
            )
        if self.lock_mode:
            try:
                conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
            except ClientError:
                enabled = None
            if enabled != "Enabled":
                return BucketError(
                    BucketProblem.NO_OBJECT_LOCK,
                    f"bucket {self.bucket!r} does not have Object Lock enabled",
                )
        return None

"""S3-compatible cold storage: put with checksums, confirm, read, list. Never deletes.

Every PUT carries its SHA-256 (``x-amz-checksum-sha256``), so the server rejects a body
corrupted in flight; confirmation then compares size and checksum from a HEAD, and reads
the object back when a server does not report checksums. Multipart uploads that fail are
aborted, so no incomplete upload is left behind. The job needs no s3:DeleteObject.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from s3transfer.utils import ReadFileChunk

CHUNK = 1 << 20


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


@dataclass(frozen=True)
class Confirmation:
    key: str
    bytes: int
    sha256: str
    method: str  # "checksum" (server-computed SHA-256) or "read-back"


class ObjectMismatch(Exception):
    """An object in the bucket differs from what was written."""


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    """The one decision of "the object (or bucket) is not there", for every caller:
    servers answer a GET with NoSuchKey and a HEAD with a bare 404."""
    return _status(error) == 404 or _code(error) in ("404", "NoSuchKey", "NotFound")


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
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.sse = sse
        self.lock_mode = lock_mode
        self.lock_days = lock_days
        self.part_size = part_size

    # -- writes -------------------------------------------------------------------

    def _put_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.sse:
            args["ServerSideEncryption"] = "AES256"
        if self.lock_mode:
            args["ObjectLockMode"] = self.lock_mode
            args["ObjectLockRetainUntilDate"] = dt.datetime.now(dt.UTC) + dt.timedelta(
                days=self.lock_days or 1
            )
        return args

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=b64(hashlib.sha256(data).hexdigest()),
            **self._put_args(),
        )

    def put_file(self, key: str, path: str, size: int, sha256: str, content_type: str) -> None:
        if size <= self.part_size:
            with open(path, "rb") as f:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=f,
                    ContentLength=size,
                    ContentType=content_type,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64(sha256),
                    **self._put_args(),
                )
            return
        self._put_multipart(key, path, content_type)

    def _put_multipart(self, key: str, path: str, content_type: str) -> None:
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
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self.abort_upload(key, upload_id)
            raise

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

    def confirm(self, key: str, size: int, sha256: str, path: str | None = None) -> Confirmation:
        """Existence, size and checksum; raises ObjectMismatch naming what differs."""
        head = self.head(key)
        if head is None:
            raise ObjectMismatch(f"{key} is not in bucket {self.bucket} after upload")
        if int(head["ContentLength"]) != size:
            raise ObjectMismatch(f"{key} has {head['ContentLength']} bytes, expected {size}")
        reported = head.get("ChecksumSHA256")
        if reported:
            # A single PUT reports the object's SHA-256; a multipart upload reports the
            # composite (SHA-256 of the parts' digests; AWS appends "-<parts>", moto not).
            base = reported.split("-", 1)[0]
            if base == b64(sha256):
                return Confirmation(key, size, sha256, "checksum")
            if path is not None and size > self.part_size and base == self.composite_checksum(path):
                return Confirmation(key, size, sha256, "checksum")
            raise ObjectMismatch(f"{key}: sha256 reported by the server differs")
        actual, actual_size = self.read_back_sha256(key)
        if actual != sha256 or actual_size != size:
            raise ObjectMismatch(f"{key}: sha256 of the bytes read back differs")
        return Confirmation(key, size, sha256, "read-back")

    def composite_checksum(self, path: str) -> str:
        """Base64 SHA-256 of the parts' SHA-256 digests, as S3 reports for multipart."""
        digests = [digest for _, _, digest in _part_digests(path, self.part_size)]
        return base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode()

    # -- bucket checks --------------------------------------------------------------

    def bucket_error(self) -> str | None:
        """None when the bucket is reachable and usable; otherwise why not."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if _status(e) == 404 or _code(e) in ("404", "NoSuchBucket", "NotFound"):
                return f"bucket {self.bucket!r} does not exist"
            if _status(e) == 403:
                return f"access to bucket {self.bucket!r} is denied"
            return f"bucket {self.bucket!r} cannot be used: {_code(e) or _status(e)}"
        if self.lock_mode:
            try:
                conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
            except ClientError:
                enabled = None
            if enabled != "Enabled":
                return f"bucket {self.bucket!r} does not have Object Lock enabled"
        return None

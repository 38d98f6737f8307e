"""Objects of the embedded S3 server (moto) that survive a restart of ``./dev ui``.

moto keeps buckets in memory only. Its recorder, when on, appends every request it
serves, body included, to a file *before* answering it, so anything the archive was told
is stored is in the file, even if the server is killed a moment later. That matters
here: a batch record in Mongo must never point at an object the restarted S3 lost.

On start the recording is compacted: the buckets and the final bytes of every object are
computed from it (PUTs, copies, deletes, multipart uploads), a fresh server is started,
recording is switched on, and the objects are written back with plain PUTs, which become
the new, compact recording. The previous recording is deleted only after that finished,
so a crash while restoring loses nothing either.

The recorder writes a request down before the server decides on it, so a conditional
write the server refused (``If-None-Match: *`` on a key that has an object, ``If-Match``
with another object's ETag: the archive's written-once writes and its start-up probe,
stores.conditional) is in the recording too; the replay applies such a write only where
its condition holds against the objects replayed so far, as the server did.

Limits (dev tooling, not a storage engine): object metadata other than the content type,
tags, versions and object-lock settings are not kept, and an object restored from a
multipart upload gets a single PUT's ETag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from audit_archive_dev.embedded import ServerProcess, start_s3

RECORDING = "recording.jsonl"
PREVIOUS = "recording.previous.jsonl"


@dataclass
class StoredObject:
    body: bytes
    content_type: str | None = None
    etag: str = ""  # unquoted, as S3 computes it: MD5 of the body, or of the parts' MD5s

    def __post_init__(self) -> None:
        self.etag = (
            self.etag or hashlib.md5(self.body).hexdigest()
        )  # S3's ETag, not a security hash


@dataclass
class Snapshot:
    """Buckets and their objects' final bytes, as a recording leaves them."""

    buckets: dict[str, dict[str, StoredObject]] = field(default_factory=dict)

    @property
    def object_count(self) -> int:
        return sum(len(objects) for objects in self.buckets.values())


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _body(entry: dict) -> bytes:
    raw = entry.get("body") or ""
    if entry.get("body_encoded"):
        return base64.b64decode(raw)
    return raw.encode("utf-8")


def _condition_holds(headers: dict[str, str], current: StoredObject | None) -> bool:
    """Whether the server accepted a write with these conditional headers, given the
    object at the key (a refused write is recorded all the same)."""
    if_none_match = _header(headers, "if-none-match")
    if if_none_match is not None and current is not None:
        return False
    if_match = _header(headers, "if-match")
    if if_match is not None:
        return current is not None and if_match.strip().strip('"') == current.etag
    return True


def _multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)  # S3's ETag, not a security hash
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def replay(lines: Iterable[str]) -> Snapshot:
    """The state a sequence of recorded requests leaves (path-style addressing)."""
    snap = Snapshot()
    uploads: dict[str, dict[int, bytes]] = {}
    upload_types: dict[str, str | None] = {}
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        method = entry.get("method", "")
        url = urlsplit(entry.get("url", ""))
        query = parse_qs(url.query, keep_blank_values=True)
        parts = url.path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0])
        key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        headers = entry.get("headers") or {}
        if not bucket or bucket == "moto-api":
            continue
        if key is None:  # bucket-level requests
            if method == "PUT" and not query:
                snap.buckets.setdefault(bucket, {})
            elif method == "DELETE" and not query:
                snap.buckets.pop(bucket, None)
            elif method == "POST" and "delete" in query:
                for gone in re.findall(r"<Key>(.*?)</Key>", _body(entry).decode("utf-8")):
                    snap.buckets.get(bucket, {}).pop(_xml_unescape(gone), None)
            continue
        objects = snap.buckets.setdefault(bucket, {})
        if method == "PUT" and "uploadId" in query and "partNumber" in query:
            uploads.setdefault(query["uploadId"][0], {})[int(query["partNumber"][0])] = _body(entry)
        elif method == "POST" and "uploads" in query:
            upload_types[f"{bucket}/{key}"] = _header(headers, "content-type")
        elif method == "POST" and "uploadId" in query:
            if not _condition_holds(headers, objects.get(key)):
                continue  # refused: the upload stays open until aborted
            chunks = uploads.pop(query["uploadId"][0], {})
            numbers = [
                int(n) for n in re.findall(r"<PartNumber>(\d+)</PartNumber>", _body(entry).decode())
            ]
            used = [chunks[n] for n in (numbers or sorted(chunks)) if n in chunks]
            content_type = upload_types.pop(f"{bucket}/{key}", None)
            objects[key] = StoredObject(b"".join(used), content_type, _multipart_etag(used))
        elif method == "DELETE" and "uploadId" in query:
            uploads.pop(query["uploadId"][0], None)
        elif method == "PUT" and not query:
            if not _condition_holds(headers, objects.get(key)):
                continue  # refused: the object at the key stays
            source = _header(headers, "x-amz-copy-source")
            if source:
                src_bucket, _, src_key = unquote(source).lstrip("/").partition("/")
                original = snap.buckets.get(src_bucket, {}).get(src_key)
                if original is not None:
                    objects[key] = StoredObject(original.body, original.content_type, original.etag)
            else:
                objects[key] = StoredObject(_body(entry), _header(headers, "content-type"))
        elif method == "DELETE" and not query:
            objects.pop(key, None)
    return snap


def _xml_unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


def _moto_api(endpoint: str, action: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/recorder/{action}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def restore(endpoint: str, snapshot: Snapshot) -> None:
    """Write the snapshot's buckets and objects to the server (plain PUTs, SHA-256 checked)."""
    from audit_archive_dev.embedded import s3_client

    s3 = s3_client(endpoint, checksums_when_required=True)
    for bucket, objects in snapshot.buckets.items():
        s3.create_bucket(Bucket=bucket)
        for key, obj in objects.items():
            extra = {"ContentType": obj.content_type} if obj.content_type else {}
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=obj.body,
                ChecksumSHA256=base64.b64encode(hashlib.sha256(obj.body).digest()).decode(),
                **extra,
            )


def start_persistent_s3(
    port: int | None, state_dir: Path, *, log_path: Path | None = None
) -> tuple[ServerProcess, Snapshot]:
    """moto on ``port``, holding what it held when it last stopped (however it stopped)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    recording, previous = state_dir / RECORDING, state_dir / PREVIOUS
    if previous.exists():
        # An earlier restore was interrupted: the previous recording is still the truth,
        # and the new one may be partial.
        recording.unlink(missing_ok=True)
    elif recording.exists():
        recording.rename(previous)
    snapshot = Snapshot()
    if previous.exists():
        with open(previous, encoding="utf-8") as f:
            snapshot = replay(f)
    server = start_s3(
        port, log_path=log_path, env={"MOTO_RECORDER_FILEPATH": str(recording.resolve())}
    )
    try:
        endpoint = f"http://127.0.0.1:{server.port}"
        _moto_api(endpoint, "reset-recording")
        _moto_api(endpoint, "start-recording")
        restore(endpoint, snapshot)
    except BaseException:
        server.stop()
        raise
    previous.unlink(missing_ok=True)
    return server, snapshot

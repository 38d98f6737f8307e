"""moto's S3 server, made to check ``x-amz-checksum-sha256`` the way S3 and MinIO do.

moto 5 stores and echoes the checksum a client sends without computing it (a TODO in
``moto.s3.responses``), so a body corrupted in flight would be "confirmed" by its own
claimed checksum. Real S3 answers ``400 BadDigest``; this wrapper makes moto do the
same for PutObject and UploadPart, so the corruption test exercises what production
relies on. Run as ``python -m audit_archive_tests.support.strict_s3 -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from typing import Any

from moto import server
from moto.s3 import responses
from moto.s3.exceptions import S3ClientError


class BadDigest(S3ClientError):
    code = "BadDigest"

    def __init__(self) -> None:
        super().__init__(
            "BadDigest", "The SHA256 you specified did not match the calculated checksum."
        )


_original = responses.S3Response._get_checksum


def _checked(self: Any, response_headers: dict[str, Any]) -> Any:
    claimed = self.headers.get("x-amz-checksum-sha256")
    if claimed and self.method == "PUT":
        actual = base64.b64encode(hashlib.sha256(self.raw_body or b"").digest()).decode()
        if actual != claimed:
            raise BadDigest()
    return _original(self, response_headers)


responses.S3Response._get_checksum = _checked

if __name__ == "__main__":
    server.main(sys.argv[1:])

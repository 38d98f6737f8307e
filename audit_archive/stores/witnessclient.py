"""The log's door to witnesses: one ``POST <prefix>/add-checkpoint`` (C2SP tlog-witness).

Standard library only (http.client). Every request is bounded in time as a whole, not
only per socket operation, so a witness that answers one byte at a time cannot hold a run:
it counts as down, with the time it was given.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_ANSWER = 64 * 1024
DEFAULT_TIMEOUT = 10.0


class WitnessUnreachable(Exception):
    """No complete answer: refused connection, timeout, broken or oversized answer."""


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def post_add_checkpoint(prefix: str, body: bytes, timeout: float = DEFAULT_TIMEOUT) -> Reply:
    """POST ``body`` to ``<prefix>/add-checkpoint``; WitnessUnreachable past ``timeout``."""
    url = urlsplit(prefix.rstrip("/") + "/add-checkpoint")
    deadline = time.monotonic() + timeout
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = cls(url.hostname or "", url.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            url.path + (f"?{url.query}" if url.query else ""),
            body=body,
            headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "audit-archive"},
        )
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WitnessUnreachable(f"no complete answer within {timeout:g} s")
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = response.read1(8192)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER:
                raise WitnessUnreachable(f"answer larger than {MAX_ANSWER} bytes")
            chunks.append(chunk)
        content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
        return Reply(response.status, content_type, b"".join(chunks))
    except WitnessUnreachable:
        raise
    except TimeoutError:
        raise WitnessUnreachable(f"no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as e:
        raise WitnessUnreachable(f"{type(e).__name__}: {e}") from None
    finally:
        conn.close()

"""A small fault-injecting HTTP proxy between the archive and the S3 server (tests only).

The archive's S3 client is pointed at the proxy (``AUDIT_COLD_ENDPOINT``); the proxy
forwards every request to the real (moto) server unless a scripted rule matches it, and
records every request it saw, so a test can both break the wire in chosen ways and
prove afterwards what the job sent (for example: never a DeleteObject).

Rules match on method, a regex over the path and a substring of the query, may let the
first ``skip`` matching requests through, and then fire ``times`` times (None: forever):

- ``status``: answer with an S3-style XML error (500 InternalError, 503 ServiceUnavailable,
  or any status/code given) without forwarding;
- ``drop``: read the request, then close the connection without answering;
- ``cut``: read half of the request body, then close the connection (a cut mid-body);
- ``corrupt``: flip one byte in the middle of the body, then forward it;
- ``hold``: keep the request on the wire (read, not forwarded) until ``release`` is set,
  then forward it: a request in flight while its sender is paused;
- ``hold-response``: forward the request, keep the server's response until ``release``
  is set, then deliver it: the write is done, its sender does not know yet.
``held`` is set when a hold begins, so a test can act at that moment.

With ``drop_checksums``, every answer loses its ``x-amz-checksum-*`` headers: the proxy
then plays a server that keeps no checksums (many S3-compatible ones, or a bucket copied
by a tool that does not carry them), in front of moto, which keeps them. With
``ignore_conditions``, every request loses its ``If-None-Match`` and ``If-Match`` headers:
the proxy plays a store that ignores conditional writes.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}
PROBE_PATH = "/probe/conditional-writes"
_CONDITIONS = ("if-none-match", "if-match")
_ERROR_CODES = {500: "InternalError", 503: "ServiceUnavailable", 400: "BadRequest"}


@dataclass
class Rule:
    action: str  # "status" | "drop" | "cut" | "corrupt" | "hold" | "hold-response"
    method: str | None = None
    path: str | None = None  # regex, searched in the path
    query: str | None = None  # substring of the raw query string
    times: int | None = 1  # None: every matching request, forever
    skip: int = 0  # let this many matching requests through first
    status: int = 503
    code: str | None = None
    fired: int = 0
    seen: int = 0
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    forwarded: threading.Event = field(default_factory=threading.Event)

    def hold(self, timeout: float = 600) -> None:
        """Between ``held`` and ``release``: the request or response stays on the wire."""
        self.held.set()
        self.release.wait(timeout)

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        return self.query is None or self.query in query


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it, and what it did with it."""

    method: str
    path: str
    query: str
    outcome: str  # "forwarded 200", "status 503", "drop", "cut", "corrupt -> 400", ...
    headers: tuple[tuple[str, str], ...] = ()  # the x-amz-* request headers (lower-case)

    def header(self, name: str) -> str | None:
        return dict(self.headers).get(name.lower())

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    @property
    def operation(self) -> str:
        """The S3 operation, named as in the S3 API (enough of them for these tests)."""
        p, m = self.params, self.method
        key = self.path.strip("/").count("/") >= 1  # /bucket/key... vs /bucket
        if m == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in p else "DeleteObject"
        if m == "POST" and "delete" in p:
            return "DeleteObjects"
        if m == "POST" and "uploads" in p:
            return "CreateMultipartUpload"
        if m == "POST" and "uploadId" in p:
            return "CompleteMultipartUpload"
        if m == "PUT" and "partNumber" in p:
            return "UploadPart"
        if m == "PUT":
            return "PutObject" if key else "CreateBucket"
        if m == "HEAD":
            return "HeadObject" if key else "HeadBucket"
        if m == "GET" and "uploads" in p:
            return "ListMultipartUploads"
        if m == "GET" and "object-lock" in p:
            return "GetObjectLockConfiguration"
        if m == "GET":
            return "GetObject" if key else "ListObjects"
        return f"{m} {self.path}"


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` then point the client at ``proxy.url``."""

    def __init__(
        self, upstream: str, *, drop_checksums: bool = False, ignore_conditions: bool = False
    ) -> None:
        parts = urlsplit(upstream)
        self.drop_checksums = drop_checksums
        self.ignore_conditions = ignore_conditions
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[Rule] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def without_probe(self) -> list[Seen]:
        """Every request but those of the start-up probe of conditional writes
        (stores.conditional), which a process sends before its first run's work."""
        with self._lock:
            return [r for r in self.requests if PROBE_PATH not in r.path]

    def operations(self) -> list[str]:
        with self._lock:
            return [r.operation for r in self.requests]

    def _pick(self, method: str, path: str, query: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path, query):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as botocore expects
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _seen(self, method: str, path: str, query: str, outcome: str) -> Seen:
        amz = tuple(
            (k.lower(), v) for k, v in self.headers.items() if k.lower().startswith("x-amz-")
        )
        return Seen(method, path, query, outcome, amz)

    def _read_body(self, limit: int | None = None) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _handle(self) -> None:
        split = urlsplit(self.path)
        method, path, query = self.command, split.path, split.query
        rule = self.owner._pick(method, path, query)
        action = rule.action if rule else "forward"
        if action == "cut":
            length = int(self.headers.get("Content-Length") or 0)
            self._read_body(limit=length // 2)
            self.owner._record(self._seen(method, path, query, "cut"))
            self._abort_connection()
            return
        body = self._read_body()
        if action == "drop":
            self.owner._record(self._seen(method, path, query, "drop"))
            self._abort_connection()
            return
        if action == "status":
            assert rule is not None
            self.owner._record(self._seen(method, path, query, f"status {rule.status}"))
            self._send_error(rule.status, rule.code or _ERROR_CODES.get(rule.status, "Error"))
            return
        if action == "hold":
            assert rule is not None
            rule.hold()
        if action == "corrupt" and body:
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        status, headers, payload = self._forward(method, body)
        if rule is not None:
            rule.forwarded.set()
        if action == "hold-response":
            assert rule is not None
            rule.hold()
        prefix = "corrupt -> " if action == "corrupt" else "forwarded "
        self.owner._record(self._seen(method, path, query, f"{prefix}{status}"))
        self.send_response(status)
        for name, value in headers:
            if self.owner.drop_checksums and name.lower().startswith("x-amz-checksum"):
                continue
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if method == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
            self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _forward(self, method: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=120)
        try:
            dropped = {*_HOP_BY_HOP, *(_CONDITIONS if self.owner.ignore_conditions else ())}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
            headers["Content-Length"] = str(len(body))
            conn.request(method, self.path, body=body if body else None, headers=headers)
            res = conn.getresponse()
            payload = res.read()
            return res.status, res.getheaders(), payload
        finally:
            conn.close()

    def _send_error(self, status: int, code: str) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>injected by the fault proxy</Message>"
            "<RequestId>faultproxy</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _abort_connection(self) -> None:
        """Close without a response; RST rather than FIN so the client sees a reset."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

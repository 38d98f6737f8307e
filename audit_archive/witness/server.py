"""The witness's HTTP server: ``POST /add-checkpoint`` and nothing else.

A threading server (one thread per connection, keep-alive as C2SP recommends); the state
lock in ``StateFile`` makes the requests' effects serial. Every refused request is logged
with its status and reason; bodies are bounded so a client cannot exhaust memory.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from audit_archive.witness.service import Answer, Witness

MAX_BODY = 64 * 1024  # an old line, 63 proof lines and a note with many signatures fit
log = logging.getLogger("audit_archive.witness")


class _Handler(BaseHTTPRequestHandler):
    server: WitnessServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/add-checkpoint":
            self._answer(Answer.refuse(404, f"no such endpoint {self.path!r}"))
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(Answer.refuse(411, "a Content-Length is required"), close=True)
            return
        if not 0 <= length <= MAX_BODY:
            self._answer(Answer.refuse(413, f"body larger than {MAX_BODY} bytes"), close=True)
            return
        body = self.rfile.read(length)
        try:
            answer = self.server.witness.add_checkpoint(body)
        except Exception:  # the state could not be written: never a cosignature
            log.exception("add-checkpoint failed")
            answer = Answer.refuse(500, "the witness could not record the checkpoint")
        self._answer(answer)

    def do_GET(self) -> None:
        self._answer(Answer.refuse(405, "only POST /add-checkpoint is served"))

    def _answer(self, answer: Answer, close: bool = False) -> None:
        if answer.status != 200:
            log.warning(
                "refused %s %s from %s: %s %s",
                self.command,
                self.path,
                self.client_address[0],
                answer.status,
                answer.reason,
            )
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s " + format, self.client_address[0], *args)


class WitnessServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], witness: Witness) -> None:
        self.witness = witness
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

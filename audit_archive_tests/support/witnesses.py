"""Real witnesses for tests: the shipped witness (``audit_archive.witness``) served on a
loopback port in a thread, and a listener that accepts and never answers (a stalled one)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from audit_archive.format.note import Signer, Verifier
from audit_archive.format.witness import generate_witness_key
from audit_archive.stores.witnessstate import StateFile
from audit_archive.witness.server import WitnessServer
from audit_archive.witness.service import Witness


@contextmanager
def running_witness(
    signer: Signer, logs: list[Verifier], state: Path, port: int = 0
) -> Iterator[WitnessServer]:
    server = WitnessServer(("127.0.0.1", port), Witness(signer, logs, StateFile(str(state))))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def stalled_listener() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (a paused witness)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def witness_entry(signer: Signer, url: str) -> str:
    """One AUDIT_LOG_WITNESSES entry."""
    return f"{signer.verifier.key_string} {url}"


def new_witness(n: int) -> Signer:
    return generate_witness_key(f"witness.example/w{n}")

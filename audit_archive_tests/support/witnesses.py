"""Real witnesses for tests: the shipped witness (``audit_archive.witness``) served on a
loopback port in a thread, or run as its own ``audit-archive witness`` process (to be
killed, restarted or paused with SIGSTOP)."""

from __future__ import annotations

import socket
import subprocess
import sys
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


def witness_entry(signer: Signer, url: str) -> str:
    """One AUDIT_LOG_WITNESSES entry."""
    return f"{signer.verifier.key_string} {url}"


def new_witness(n: int) -> Signer:
    return generate_witness_key(f"witness.example/w{n}")


CLI = "import sys; from audit_archive.cli import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_witness_process(
    signer: Signer, logs: list[Verifier], state: Path, port: int, folder: Path
) -> subprocess.Popen:
    """``audit-archive witness`` as its own process (so it can be killed or paused),
    returned once it serves."""
    key = folder / f"witness-{port}.key"
    key.write_text(signer.key_string + "\n" + signer.verifier.key_string + "\n")
    args = ["--listen", f"127.0.0.1:{port}", "--key", str(key), "--state", str(state)]
    for log in logs:
        args += ["--log", log.key_string]
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "witness", *args], stderr=subprocess.PIPE, text=True
    )
    line = proc.stderr.readline() if proc.stderr else ""
    assert "serving" in line, line
    return proc

"""The demo's witness (SPEC section 8): the shipped witness, served in a thread on a
loopback port, with a key and a state file kept in the data folder, so ``./dev demo`` and
``./dev ui`` show a log whose head is cosigned before anything leaves hot."""

from __future__ import annotations

import threading
from pathlib import Path

from audit_archive.format.note import Signer, parse_verifier
from audit_archive.format.witness import generate_witness_key, parse_witness_signer
from audit_archive.stores.witnessstate import StateFile
from audit_archive.witness.server import WitnessServer
from audit_archive.witness.service import Witness
from audit_archive_dev.logkey import kept_key

DEMO_WITNESS_NAME = "demo.audit-archive.local/witness"
KEY_FILE = "witness-signing-key"
STATE_FILE = "witness-state.json"


def demo_witness_key(folder: Path) -> Signer:
    """The witness's signer key in ``folder`` (made on first use, owner-readable only)."""
    make = lambda: generate_witness_key(DEMO_WITNESS_NAME)  # noqa: E731
    return kept_key(folder / KEY_FILE, make, parse_witness_signer)


class DemoWitness:
    """A running witness for the log whose verifier key is in ``env``; ``env_entries`` are
    the variables that make the archive submit to it (quorum 1)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.signer = demo_witness_key(folder)
        log = parse_verifier(env["AUDIT_LOG_VERIFIER_KEY"])
        state = StateFile(str(folder / STATE_FILE))
        self.server = WitnessServer(("127.0.0.1", 0), Witness(self.signer, [log], state))
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def env_entries(self) -> dict[str, str]:
        return {
            "AUDIT_LOG_WITNESSES": f"{self.signer.verifier.key_string} {self.server.url}",
            "AUDIT_LOG_WITNESS_QUORUM": "1",
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

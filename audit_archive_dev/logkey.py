"""The demo's signed-log key: made once per data folder and kept there (``./dev demo``,
``./dev ui``), so the log's checkpoints stay verifiable across restarts of the demo."""

from __future__ import annotations

import os
from pathlib import Path

from audit_archive.format.note import Signer, generate_key, parse_signer

DEMO_LOG_ORIGIN = "demo.audit-archive.local/log"
KEY_FILE = "log-signing-key"


def demo_log_key(folder: Path) -> Signer:
    """The signer key in ``folder`` (made on first use, readable by its owner only)."""
    path = folder / KEY_FILE
    if path.exists():
        return parse_signer(path.read_text().strip(), str(path))
    folder.mkdir(parents=True, exist_ok=True)
    signer = generate_key(DEMO_LOG_ORIGIN)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.key_string + "\n")
    return signer


def log_env(folder: Path) -> dict[str, str]:
    """AUDIT_LOG_SIGNING_KEY (switches the demo's log on) and its verifier key."""
    signer = demo_log_key(folder)
    return {
        "AUDIT_LOG_SIGNING_KEY": signer.key_string,
        "AUDIT_LOG_VERIFIER_KEY": signer.verifier.key_string,
    }

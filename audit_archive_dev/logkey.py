"""The demo's signed-log key: made once per data folder and kept there (``./dev demo``,
``./dev ui``), so the log's checkpoints stay verifiable across restarts of the demo."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from audit_archive.format.note import Signer, generate_key, parse_signer

DEMO_LOG_ORIGIN = "demo.audit-archive.local/log"
KEY_FILE = "log-signing-key"


def kept_key(path: Path, make: Callable[[], Signer], parse: Callable[[str, str], Signer]) -> Signer:
    """The signer key in ``path`` (made on first use, readable by its owner only)."""
    if path.exists():
        return parse(path.read_text().strip(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(signer.key_string + "\n")
    return signer


def demo_log_key(folder: Path) -> Signer:
    """The log's signer key in ``folder``."""
    return kept_key(folder / KEY_FILE, lambda: generate_key(DEMO_LOG_ORIGIN), parse_signer)


def log_env(folder: Path) -> dict[str, str]:
    """AUDIT_LOG_SIGNING_KEY (switches the demo's log on) and its verifier key."""
    signer = demo_log_key(folder)
    return {
        "AUDIT_LOG_SIGNING_KEY": signer.key_string,
        "AUDIT_LOG_VERIFIER_KEY": signer.verifier.key_string,
    }

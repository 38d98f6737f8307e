"""Running a script of ``benchmarks/`` the way CI does: small, on its own embedded
servers, for its JSON report (figures are never asserted: they belong to the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, timeout: int = 600) -> dict[str, Any]:
    """``benchmarks/<script> <args> --json``, which must exit 0; its JSON report."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUDIT_", "ARCHIVE_")) and k != "MONGODB_URI"
    }  # its own embedded servers, whatever the session points at
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:  # dagster dev's log lines share stdout with a one-line report
        return json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("{")))

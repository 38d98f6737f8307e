"""benchmarks/bench_span.py runs and reports every field (CI runs it small so it never
rots). Times are not asserted: they belong to the machine (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("wall_s", "wall_vs_compact", "neighbours_s", "commands", "documents_examined")


def test_the_span_benchmark_runs_and_prints_both_shapes() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUDIT_", "ARCHIVE_")) and k != "MONGODB_URI"
    }  # its own embedded servers, whatever the session points at
    script = ROOT / "benchmarks" / "bench_span.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--own", "20", "--foreign", "300", "--repeat", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    compact, spanning = json.loads(proc.stdout)["rows"]

    assert (compact["shape"], spanning["shape"]) == ("compact", "spanning")
    assert compact["own_events"] == spanning["own_events"] == 20
    assert spanning["foreign_events_in_span"] == 300
    for row in (compact, spanning):
        for field in FIELDS:
            assert isinstance(row[field], int | float) and row[field] >= 0, (row, field)
    # counts, not times: the 300 events in the span are not read
    assert spanning["documents_examined"] <= compact["documents_examined"] + 20

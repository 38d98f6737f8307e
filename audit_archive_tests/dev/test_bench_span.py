"""benchmarks/bench_span.py runs and reports every field (CI runs it small so it never
rots). Times are not asserted: they belong to the machine (docs/performance.md)."""

from __future__ import annotations

from audit_archive_tests.support.benchmarks import run_benchmark

FIELDS = ("wall_s", "wall_vs_compact", "neighbours_s", "commands", "documents_examined")


def test_the_span_benchmark_runs_and_prints_both_shapes() -> None:
    report = run_benchmark("bench_span.py", "--own", "20", "--foreign", "300", "--repeat", "1")
    compact, spanning = report["rows"]

    assert (compact["shape"], spanning["shape"]) == ("compact", "spanning")
    assert compact["own_events"] == spanning["own_events"] == 20
    assert spanning["foreign_events_in_span"] == 300
    for row in (compact, spanning):
        for field in FIELDS:
            assert isinstance(row[field], int | float) and row[field] >= 0, (row, field)
    # counts, not times: the 300 events in the span are not read
    assert spanning["documents_examined"] <= compact["documents_examined"] + 20

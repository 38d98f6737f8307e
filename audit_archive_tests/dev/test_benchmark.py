"""The benchmark runs and reports every field (CI runs it small so it never rots).

Timings are not asserted: they belong to the machine (benchmarks/, README)."""

from __future__ import annotations

from audit_archive_tests.support.benchmarks import run_benchmark

PHASES = ("read_decode", "encode", "compress", "hash", "upload", "confirm", "record", "purge")
MEASURES = ("wall_s", "cpu_s", "startup_cpu_s", "peak_rss_mib")


def test_the_benchmark_runs_end_to_end_and_prints_every_field() -> None:
    """With the ``mixed`` payload: plain events, events of every rare BSON type, and
    query filters written as bson lines, all archived and purged."""
    result = run_benchmark("bench_archive.py", "--events", "2000", "--payload", "mixed")

    assert result["events"] == 2000
    assert result["payload"] == "mixed"  # every BSON type, and bson lines (SPEC 3)
    assert result["bytes_uncompressed"] > result["bytes_compressed"] > 0
    for kind in ("floor", "archive", "naive"):
        for measure in MEASURES:
            assert isinstance(result[kind][measure], int | float), (kind, measure)
            assert result[kind][measure] >= 0, (kind, measure)
    assert result["floor"]["read"] == result["floor"]["deleted"] == 2000
    assert result["naive"]["deleted"] == 2000
    assert set(PHASES) <= set(result["archive"]["phases"])
    assert all(v >= 0 for v in result["archive"]["phases"].values())
    for ratio in ("archive_wall_vs_floor", "archive_cpu_vs_naive", "archive_rss_vs_naive"):
        assert result["ratios"][ratio] > 0, ratio


def test_the_restore_benchmark_runs_and_reports_events_per_second() -> None:
    result = run_benchmark("bench_restore.py", "--events", "300")
    assert result["events"] == 300
    for name in ("restore", "restore_again", "upsert_old_write_only"):
        assert result[f"{name}_events_per_s"] > 0, name
        assert result[f"{name}_events_per_cpu_s"] > 0, name
        for process in ("client", "mongo", "s3"):
            assert result[f"{name}_cpu_{process}_s"] >= 0, (name, process)
    assert result["restore_vs_upsert_old_per_cpu_s"] > 0


def test_the_run_worker_benchmark_starts_each_kind_like_a_launcher_and_archives_the_day() -> None:
    """One run of each kind through ``dagster api execute_run``: the archive's day (it
    must be archived), six no-op steps and an empty job (Dagster's floor)."""
    result = run_benchmark("bench_run_worker.py", "--runs", "1")
    for kind in ("archive", "six_steps", "empty"):
        assert result[kind]["succeeded"] == 1, kind
        assert result[kind]["cpu_s"] > 0 and result[kind]["wall_s"] > 0, kind
    assert result["days_archived"] == 1
    assert result["archive"]["run_event_kinds"]["ASSET_MATERIALIZATION"] == 1
    assert result["empty"]["run_events"] < result["six_steps"]["run_events"]

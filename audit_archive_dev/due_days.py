"""N small due days on the embedded servers, for the benchmarks that archive them through
Dagster (bench_catchup.py, bench_asset_vs_job.py): the archive's environment, the bucket,
and chained events seeded on each day."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from pymongo import MongoClient

from audit_archive.format import layout
from audit_archive_dev import seed
from audit_archive_dev.demo import DEMO_KEY
from audit_archive_dev.embedded import Stack, create_bucket

RETENTION = 90


def seed_due_days(
    stack: Stack, work: Path, days: int, per_day: int
) -> tuple[list[dt.date], dict[str, str]]:
    """The ``days`` newest due days (ARCHIVE_START_DATE is the first), ``per_day`` events
    on each; returns the days and the environment the archive runs with."""
    newest = layout.newest_due_day(dt.datetime.now(dt.UTC), RETENTION)
    first = newest - dt.timedelta(days=days - 1)
    env = {
        **stack.env(database="dezky", bucket="dezky-audit"),
        "AUDIT_SIGNING_KEY": DEMO_KEY,
        "AUDIT_HOT_RETENTION_DAYS": str(RETENTION),
        "AUDIT_WORK_DIR": str(work / "staging"),
        "ARCHIVE_START_DATE": layout.format_day(first),
    }
    create_bucket(stack.s3_endpoint, "dezky-audit")
    rng = random.Random(7)
    ats = [at for day in layout.days(first, newest) for at in seed.day_times(day, per_day, rng)]
    client = MongoClient(env["MONGODB_URI"], tz_aware=True)
    try:
        seed.append(client["dezky"]["auditevents"], ats, rng=rng)
    finally:
        client.close()
    return list(layout.days(first, newest)), env

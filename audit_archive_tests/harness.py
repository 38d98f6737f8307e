"""Test harness: one database and one bucket per test on the session's real servers,
seeding, running the job, reading the archive back, and the archive's invariant."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from bson import Decimal128
from pymongo import MongoClient
from pymongo.database import Database

from audit_archive import layout
from audit_archive.canonical import EVENT_CODEC_OPTIONS, event_hash
from audit_archive.jsonl import parse_line
from audit_archive.manifest import SignatureStatus, verify_signature
from audit_archive.settings import Settings
from audit_archive_dev import seed

KEY_A = "test-signing-key-A-0123456789abcdef0123456789"
KEY_B = "test-signing-key-B-0123456789abcdef0123456789"
RETENTION = 90


def due_day(days_back: int = 0) -> dt.date:
    """The newest due day now, minus ``days_back`` days."""
    return layout.newest_due_day(dt.datetime.now(dt.UTC), RETENTION) - dt.timedelta(days=days_back)


def same_value(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (floats and Decimal128)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, Decimal128) and isinstance(b, Decimal128):
        return str(a) == str(b)
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a | b, bool):
        return a == b and isinstance(a, bool) == isinstance(b, bool)  # Int32/Int64 by value
    return type(a) is type(b) and a == b


@dataclass
class Harness:
    env: dict[str, str]
    client: MongoClient
    s3: Any
    rng: random.Random = field(default_factory=lambda: random.Random(42))
    seeded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def db(self) -> Database:
        return self.client.get_database(self.settings.database, codec_options=EVENT_CODEC_OPTIONS)

    @property
    def events(self):
        return self.db[self.settings.events_collection]

    @property
    def batches(self):
        return self.db[self.settings.batches_collection]

    @property
    def bucket(self) -> str:
        return self.env["AUDIT_COLD_BUCKET"]

    # -- seeding --------------------------------------------------------------------

    def seed(self, counts: dict[dt.date, int], *, gap_rate: float = 0.03) -> list[dict[str, Any]]:
        """Chained events for each day (in day order), continuing the chain."""
        ats: list[dt.datetime] = []
        for day in sorted(counts):
            ats += seed.day_times(day, counts[day], self.rng)
        return self.append(ats, gap_rate=gap_rate)

    def append(self, ats: Iterable[dt.datetime], *, gap_rate: float = 0.03) -> list[dict[str, Any]]:
        after = self._tail()
        docs = list(
            seed.chain(ats, first_seq=after[0], prev_hash=after[1], rng=self.rng, gap_rate=gap_rate)
        )
        if docs:
            self.events.insert_many(docs)
        self.seeded += docs
        return docs

    def _tail(self) -> tuple[int, str]:
        if not self.seeded:
            return seed.chain_tail(self.events)
        last = max(self.seeded, key=lambda d: d["seq"])
        return last["seq"] + 1, last["hash"]

    # -- running ----------------------------------------------------------------------

    def run(self, day: dt.date | str, **kwargs: Any):
        from audit_archive.definitions import defs

        job = defs.resolve_job_def("audit_archive_job")
        key = day if isinstance(day, str) else layout.format_day(day)
        return job.execute_in_process(partition_key=key, raise_on_error=False, **kwargs)

    # -- reading the archive ------------------------------------------------------------

    def object_keys(self, prefix: str = "") -> list[str]:
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            out += [o["Key"] for o in page.get("Contents") or ()]
        return sorted(out)

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def manifest(self, day: dt.date | str, part: int = 1) -> dict[str, Any]:
        return json.loads(
            self.get(
                layout.manifest_key(
                    self.settings.cold_prefix,
                    day if isinstance(day, str) else layout.format_day(day),
                    part,
                )
            )
        )

    def part_events(self, day: dt.date | str, part: int = 1) -> list[dict[str, Any]]:
        key = layout.jsonl_key(
            self.settings.cold_prefix, day if isinstance(day, str) else layout.format_day(day), part
        )
        return [parse_line(line) for line in gzip.decompress(self.get(key)).decode().splitlines()]

    def records(self, day: dt.date | str | None = None) -> list[dict[str, Any]]:
        flt = (
            {} if day is None else {"day": day if isinstance(day, str) else layout.format_day(day)}
        )
        return list(self.batches.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)]))

    def hot_seqs(self) -> set[int]:
        return {d["seq"] for d in self.events.find({}, {"seq": 1})}

    # -- the invariant ------------------------------------------------------------------

    def assert_invariant(
        self, now: dt.datetime | None = None, keys: Iterable[str] | None = None
    ) -> None:
        """Every seeded chained event of a due day is in exactly one recorded part whose
        objects match manifest and record; none of them is left in hot; nothing that
        is not archived was deleted; the chain links across parts and hot."""
        now = now or dt.datetime.now(dt.UTC)
        keys = tuple(keys or (KEY_A, KEY_B))
        newest_due = layout.newest_due_day(now, RETENTION)
        archived: dict[Any, dict[str, Any]] = {}
        for rec in self.records():
            manifest_raw = self.get(rec["manifestKey"])
            assert hashlib.sha256(manifest_raw).hexdigest() == rec["manifestSha256"], rec
            manifest = json.loads(manifest_raw)
            assert verify_signature(manifest, keys) is SignatureStatus.VALID, rec
            assert manifest["eventCount"] == rec["eventCount"]
            if rec["eventCount"]:
                raw = self.get(rec["jsonlKey"])
                assert (
                    hashlib.sha256(raw).hexdigest()
                    == rec["jsonlSha256"]
                    == manifest["jsonl"]["sha256"]
                )
                assert len(raw) == rec["bytesCompressed"] == manifest["jsonl"]["bytes"]
                events = [parse_line(x) for x in gzip.decompress(raw).decode().splitlines()]
                assert len(events) == rec["eventCount"]
                for e in events:
                    assert e["_id"] not in archived, f"event seq {e['seq']} archived twice"
                    assert event_hash(e) == e["hash"]
                    assert layout.format_day(e["at"].date()) == rec["day"]
                    archived[e["_id"]] = e
        hot = {d["_id"]: d for d in self.events.find({})}
        for e in self.seeded:
            day = e["at"].date()
            in_archive = e["_id"] in archived
            in_hot = e["_id"] in hot
            if (
                isinstance(e.get("hash"), str)
                and day <= newest_due
                and layout.format_day(day) >= self.env.get("ARCHIVE_START_DATE", "2024-01-01")
            ):
                assert in_archive, f"due event seq {e['seq']} ({day}) is not archived"
            assert not (in_archive and in_hot), f"archived event seq {e['seq']} is still in hot"
            assert in_archive or in_hot, f"event seq {e['seq']} was deleted without being archived"
            if in_archive:
                assert same_value(archived[e["_id"]], e), (
                    f"event seq {e['seq']} changed in the archive"
                )
        chain = sorted(
            [*archived.values(), *(d for d in hot.values() if isinstance(d.get("hash"), str))],
            key=lambda d: d["seq"],
        )
        for before, after in itertools.pairwise(chain):
            assert after["prevHash"] == before["hash"], (
                f"chain breaks between seq {before['seq']} and {after['seq']}"
            )


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret-key",
        region_name="us-east-1",
    )

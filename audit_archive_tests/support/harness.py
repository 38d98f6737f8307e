"""Test harness: one database and one bucket per test on the session's real servers,
seeding, running the job, reading the archive back, and the archive's invariant."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import itertools
import json
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from bson import Decimal128
from pymongo import MongoClient
from pymongo.database import Database

from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, event_hash
from audit_archive.format.checkpoint import open_checkpoint
from audit_archive.format.jsonl import parse_line
from audit_archive.format.logentry import (
    checkpoint_key,
    entry_key,
    latest_checkpoint_key,
    log_prefix,
    parse_entry,
)
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive.format.merkle import merkle_root
from audit_archive.format.note import parse_verifier
from audit_archive.format.tlog import leaf_hash, tree_hash
from audit_archive.settings import Settings
from audit_archive_dev import seed
from audit_archive_dev.embedded import Stack, create_bucket, s3_client

KEY_A = "test-signing-key-A-0123456789abcdef0123456789"
KEY_B = "test-signing-key-B-0123456789abcdef0123456789"
# The signed log's test key pair (seed = SHA-256("audit-archive test log key")).
LOG_KEY = (
    "PRIVATE+KEY+test.example/audit-archive+b64daa00+AeQg4R5qmkkSTTCY5PsUBcdeJpXYLTyJRObwGiKYqi45"
)
LOG_VERIFIER = "test.example/audit-archive+b64daa00+Adip0lSKiXDkN39txTw4FqEiGxNvUCsaEcfjmglaRyfn"
RETENTION = 90


def due_day(days_back: int = 0) -> dt.date:
    """The newest due day now, minus ``days_back`` days."""
    return layout.newest_due_day(dt.datetime.now(dt.UTC), RETENTION) - dt.timedelta(days=days_back)


def after_due(day: dt.date) -> dt.datetime:
    """A moment when ``day`` is due under the tests' retention."""
    return layout.day_bounds(day)[1] + dt.timedelta(days=RETENTION)


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

    def run_tagged(self, day: dt.date | str, **kwargs: Any):
        """A run of the job with the day as a partition tag only, as GraphQL, the
        Launchpad and run requests send it (Dagster checks a tag against nothing)."""
        from audit_archive.definitions import defs

        job = defs.resolve_job_def("audit_archive_job")
        key = day if isinstance(day, str) else layout.format_day(day)
        tags = {"dagster/partition": key, **kwargs.pop("tags", {})}
        return job.execute_in_process(tags=tags, raise_on_error=False, **kwargs)

    # -- reading the archive ------------------------------------------------------------

    def object_keys(self, prefix: str = "", *, with_probe: bool = False) -> list[str]:
        """The bucket's keys under ``prefix``; without ``with_probe``, all but the one
        object the start-up probe of conditional writes leaves (stores.conditional)."""
        probe = None if with_probe else layout.probe_key(self.settings.cold_prefix)
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            out += [o["Key"] for o in page.get("Contents") or () if o["Key"] != probe]
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
        self,
        now: dt.datetime | None = None,
        keys: Iterable[str] | None = None,
        *,
        left_in_hot: Iterable[Any] = (),
        off_chain: Iterable[Any] = (),
    ) -> None:
        """The archive's invariant (issue 7), checked from the outside:

        - every seeded chained event of a due day is in exactly one recorded part
          (``left_in_hot``: _ids the archive must leave in hot instead, e.g. malformed);
        - every record is unique by (day, part), parts count 1..N per day, and its
          objects match manifest and record: sha256, sizes, counts, seq range, first and
          last hashes, Merkle root and chainEdges recomputed from the events; the
          manifest's signature verifies; every event re-hashes, belongs to the day and
          the part is in ascending seq;
        - the bucket holds no object that no record names (but the conditional-write
          probe's), and no incomplete upload;
        - no archived event remains in hot; nothing that is not archived was deleted;
        - the chain links across all parts and hot, by seq (``off_chain``: _ids that are
          not part of the chain, e.g. a junk document with a non-integer seq).
        """
        now = now or dt.datetime.now(dt.UTC)
        keys = tuple(keys or (KEY_A, KEY_B))
        left_in_hot, off_chain = set(left_in_hot), set(off_chain)
        newest_due = layout.newest_due_day(now, RETENTION)
        archived: dict[Any, dict[str, Any]] = {}
        parts: list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]] = []
        named_keys: set[str] = set()
        records = self.records()
        by_day: dict[str, list[int]] = {}
        for rec in records:
            by_day.setdefault(rec["day"], []).append(rec["part"])
        for day, numbers in by_day.items():
            assert numbers == list(range(1, len(numbers) + 1)), f"{day}: parts {numbers}"
        for rec in records:
            named_keys.add(rec["manifestKey"])
            manifest_raw = self.get(rec["manifestKey"])
            assert hashlib.sha256(manifest_raw).hexdigest() == rec["manifestSha256"], rec
            manifest = json.loads(manifest_raw)
            assert verify_signature(manifest, keys) is SignatureStatus.VALID, rec
            for mine, theirs in (
                ("day", "day"),
                ("part", "part"),
                ("eventCount", "eventCount"),
                ("startSeq", "startSeq"),
                ("endSeq", "endSeq"),
            ):
                assert manifest[theirs] == rec[mine], (rec["day"], rec["part"], mine)
            events: list[dict[str, Any]] = []
            if rec["eventCount"]:
                named_keys.add(rec["jsonlKey"])
                assert manifest["jsonl"]["key"] == rec["jsonlKey"]
                raw = self.get(rec["jsonlKey"])
                assert (
                    hashlib.sha256(raw).hexdigest()
                    == rec["jsonlSha256"]
                    == manifest["jsonl"]["sha256"]
                )
                assert len(raw) == rec["bytesCompressed"] == manifest["jsonl"]["bytes"]
                text = gzip.decompress(raw)
                assert len(text) == rec["bytesUncompressed"]
                events = [parse_line(x) for x in text.decode().splitlines()]
                assert len(events) == rec["eventCount"]
                seqs = [e["seq"] for e in events]
                assert seqs == sorted(set(seqs)), f"part {rec['day']}/{rec['part']} not by seq"
                assert (seqs[0], seqs[-1]) == (rec["startSeq"], rec["endSeq"])
                assert manifest["firstPrevHash"] == events[0]["prevHash"]
                assert manifest["lastHash"] == events[-1]["hash"]
                assert manifest["merkleRoot"] == merkle_root(e["hash"] for e in events)
                for e in events:
                    assert e["_id"] not in archived, f"event seq {e['seq']} archived twice"
                    assert event_hash(e) == e["hash"]
                    assert layout.format_day(e["at"].date()) == rec["day"]
                    archived[e["_id"]] = e
            else:
                assert manifest["jsonl"] is None and rec["jsonlKey"] is None
            parts.append((rec, manifest, events))
        if self.settings.log_signer is not None:
            named_keys |= self.assert_log_invariant()
        stray = set(self.object_keys()) - named_keys
        assert not stray, f"objects no record names: {sorted(stray)}"
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads") or []
        assert not uploads, f"incomplete multipart uploads: {[u['Key'] for u in uploads]}"

        hot = {d["_id"]: d for d in self.events.find({})}
        start_day = self.env.get("ARCHIVE_START_DATE", "2024-01-01")
        for e in self.seeded:
            at = e.get("at")
            in_archive = e["_id"] in archived
            in_hot = e["_id"] in hot
            if e["_id"] in left_in_hot:
                assert in_hot and not in_archive, f"{e['_id']} must be left in hot"
            elif (
                isinstance(e.get("hash"), str)
                and isinstance(at, dt.datetime)
                and at.date() <= newest_due
                and layout.format_day(at.date()) >= start_day
            ):
                assert in_archive, f"due event seq {e['seq']} ({at.date()}) is not archived"
            assert not (in_archive and in_hot), f"archived event seq {e['seq']} is still in hot"
            assert in_archive or in_hot, (
                f"event seq {e.get('seq')} was deleted without being archived"
            )
            if in_archive:
                assert same_value(archived[e["_id"]], e), (
                    f"event seq {e['seq']} changed in the archive"
                )

        chain = sorted(
            (
                d
                for d in [*archived.values(), *hot.values()]
                if isinstance(d.get("hash"), str)
                and d["_id"] not in off_chain
                and is_integer_seq(d.get("seq"))
            ),
            key=lambda d: d["seq"],
        )
        for before, after in itertools.pairwise(chain):
            assert after["prevHash"] == before["hash"], (
                f"chain breaks between seq {before['seq']} and {after['seq']}"
            )
        position = {d["_id"]: i for i, d in enumerate(chain)}
        for rec, manifest, events in parts:
            ids = {e["_id"] for e in events}
            expected = []
            for e in events:
                i = position[e["_id"]]
                before = chain[i - 1]["_id"] if i > 0 else None
                after = chain[i + 1]["_id"] if i + 1 < len(chain) else None
                if before not in ids or after not in ids:
                    expected.append({"seq": e["seq"], "prevHash": e["prevHash"], "hash": e["hash"]})
            assert manifest["chainEdges"] == expected, (
                f"chainEdges of {rec['day']} part {rec['part']} do not match its events"
            )

    def assert_log_invariant(self) -> set[str]:
        """The signed log (SPEC section 7), checked from the outside; returns its keys.

        Every recorded part is exactly one leaf, indexes dense from 0; each entry names
        its part's manifest and sha256 and its record carries that ``logIndex``; the
        latest and every numbered checkpoint verify with the verifier key and their roots
        are the RFC 6962 tree over the manifests' bytes as stored; MongoDB's leaves agree.
        """
        prefix = self.settings.cold_prefix
        verifier = parse_verifier(LOG_VERIFIER)
        records = self.records()
        keys = set(self.object_keys(log_prefix(prefix)))
        n = len(records)
        entries = [parse_entry(self.get(entry_key(prefix, i))) for i in range(n)]
        assert {entry_key(prefix, i) for i in range(n)} == {
            k for k in keys if "/log/entries/" in k
        }, "log entries are not exactly 0..n-1 for n recorded parts"
        by_key = {rec["manifestKey"]: rec for rec in records}
        assert len({e.manifest_key for e in entries}) == n, "a part is logged twice"
        leaves = []
        for i, e in enumerate(entries):
            assert e.index == i
            rec = by_key[e.manifest_key]
            assert rec.get("logIndex") == i, (rec["day"], rec["part"], rec.get("logIndex"), i)
            raw = self.get(e.manifest_key)
            assert hashlib.sha256(raw).hexdigest() == e.manifest_sha256 == rec["manifestSha256"]
            leaves.append(leaf_hash(raw))
        latest = open_checkpoint(self.get(latest_checkpoint_key(prefix)), verifier)
        assert latest.size == n and latest.root == tree_hash(leaves), "latest checkpoint"
        numbered = sorted(k for k in keys if "/log/checkpoints/" in k)
        assert checkpoint_key(prefix, n) in numbered
        for k in numbered:
            cp = open_checkpoint(self.get(k), verifier)
            assert k == checkpoint_key(prefix, cp.size) and cp.root == tree_hash(leaves[: cp.size])
        mongo = list(self.db[f"{self.settings.batches_collection}_log"].find({}).sort("_id", 1))
        assert [(d["_id"], d["manifestKey"]) for d in mongo] == [
            (i, e.manifest_key) for i, e in enumerate(entries)
        ]
        assert [bytes.fromhex(d["leafHash"]) for d in mongo] == leaves
        return keys


def point_archive_at(
    stack: Stack,
    mongo_client: MongoClient,
    mp: pytest.MonkeyPatch,
    name: str,
    work_dir: str,
    **extra: str,
) -> Harness:
    """Point the archive's environment at a fresh database and bucket called ``name``:
    every AUDIT_/ARCHIVE_ variable cleared, then the test's set through ``mp``."""
    env = {
        **stack.env(database=f"db{name}", bucket=f"b-{name}"),
        "AUDIT_SIGNING_KEY": KEY_A,
        "AUDIT_HOT_RETENTION_DAYS": str(RETENTION),
        "AUDIT_WORK_DIR": work_dir,
        "AUDIT_LEASE_SECONDS": "10",
        **extra,
    }
    for variable in list(os.environ):
        if variable.startswith(("AUDIT_", "ARCHIVE_")) or variable == "MONGODB_URI":
            mp.delenv(variable)
    for variable, value in env.items():
        mp.setenv(variable, value)
    create_bucket(stack.s3_endpoint, env["AUDIT_COLD_BUCKET"])
    return Harness(env, mongo_client, s3_client(stack.s3_endpoint))

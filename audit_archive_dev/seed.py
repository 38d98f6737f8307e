"""Realistic hash-chained audit events, written as the platform's producer writes them.

Events get increasing ``seq`` (with gaps: numbers burned on rejected inserts) and are
chained in ``seq`` order; ``at`` usually follows ``seq`` but late events ingested from
external systems carry an older ``at``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Iterator
from typing import Any

from bson import ObjectId
from pymongo.collection import Collection

from audit_archive.format.canonical import ZERO_HASH, event_hash

SOURCES = ("authentik", "billing", "api-gateway", "admin-console", "scheduler")
ACTIONS = (
    "user.login",
    "user.logout",
    "user.mfa.verify",
    "role.grant",
    "role.revoke",
    "invoice.create",
    "invoice.void",
    "token.issue",
    "token.revoke",
    "settings.update",
)


def make_body(rng: random.Random, at: dt.datetime, seq: int) -> dict[str, Any]:
    """One event's payload: nested actor/target/meta, about 400-700 bytes of JSON."""
    actor = f"u{rng.randint(1, 500)}"
    return {
        "seq": seq,
        "at": at,
        "source": rng.choice(SOURCES),
        "action": rng.choice(ACTIONS),
        "actor": {
            "id": actor,
            "ip": f"203.0.113.{rng.randint(1, 254)}",
            "userAgent": rng.choice(
                [
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1",
                    "curl/8.5.0",
                ]
            ),
            "roles": rng.sample(
                ["viewer", "editor", "admin", "billing", "support"], rng.randint(1, 3)
            ),
        },
        "target": {
            "type": rng.choice(["user", "invoice", "project", "api-key"]),
            "id": f"{rng.getrandbits(48):012x}",
            "tenant": f"t{rng.randint(1, 40)}",
        },
        "meta": {
            "requestId": f"{rng.getrandbits(128):032x}",
            "latencyMs": round(rng.uniform(0.5, 900), 3),
            "result": rng.choice(["ok", "ok", "ok", "denied", "error"]),
            "attempt": rng.randint(1, 3),
            "geo": {
                "country": rng.choice(["DE", "FR", "NL", "US", "PL"]),
                "asn": rng.randint(1000, 65000),
            },
            "note": "".join(
                rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(rng.randint(20, 160))
            ),
        },
    }


def chain(
    ats: Iterable[dt.datetime],
    *,
    first_seq: int = 1,
    prev_hash: str = ZERO_HASH,
    rng: random.Random | None = None,
    gap_rate: float = 0.03,
) -> Iterator[dict[str, Any]]:
    """Chained events for the given ``at`` values, in insertion (= seq) order."""
    rng = rng or random.Random(0)
    seq = first_seq
    for at in ats:
        if rng.random() < gap_rate:
            seq += rng.randint(1, 5)  # burned numbers
        doc = {"_id": ObjectId(), **make_body(rng, at, seq), "prevHash": prev_hash}
        doc["hash"] = event_hash(doc)
        prev_hash = doc["hash"]
        yield doc
        seq += 1


def chain_tail(collection: Collection) -> tuple[int, str]:
    """(next seq, prevHash for it) after the newest chained event, in hot or archived."""
    last = collection.find_one({"hash": {"$type": "string"}}, sort=[("seq", -1)])
    if last is None:
        return 1, ZERO_HASH
    return last["seq"] + 1, last["hash"]


def append(
    collection: Collection,
    ats: Iterable[dt.datetime],
    *,
    rng: random.Random | None = None,
    after: tuple[int, str] | None = None,
    gap_rate: float = 0.03,
    batch: int = 5000,
) -> list[int]:
    """Insert chained events continuing the chain; returns their seqs.

    ``after`` gives (next seq, prevHash) when the tail is no longer in hot (archived)."""
    first_seq, prev_hash = after or chain_tail(collection)
    seqs: list[int] = []
    pending: list[dict[str, Any]] = []
    for doc in chain(ats, first_seq=first_seq, prev_hash=prev_hash, rng=rng, gap_rate=gap_rate):
        pending.append(doc)
        seqs.append(doc["seq"])
        if len(pending) >= batch:
            collection.insert_many(pending, ordered=True)
            pending.clear()
    if pending:
        collection.insert_many(pending, ordered=True)
    return seqs


def day_times(day: dt.date, count: int, rng: random.Random) -> list[dt.datetime]:
    """``count`` sorted moments within the UTC day, millisecond precision."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    millis = sorted(rng.randrange(86_400_000) for _ in range(count))
    return [start + dt.timedelta(milliseconds=m) for m in millis]


def history(
    first_day: dt.date,
    last_day: dt.date,
    rng: random.Random,
    *,
    per_day: tuple[int, int] = (40, 250),
    empty_days: Iterable[dt.date] = (),
    late: Iterable[tuple[dt.date, int]] = (),
) -> list[dt.datetime]:
    """``at`` values in insertion order for a span of days; ``late`` adds, after the
    whole span, events carrying an old day's ``at`` (ingested late)."""
    empty = set(empty_days)
    ats: list[dt.datetime] = []
    day = first_day
    while day <= last_day:
        if day not in empty:
            ats += day_times(day, rng.randint(*per_day), rng)
        day += dt.timedelta(days=1)
    for late_day, count in late:
        ats += day_times(late_day, count, rng)
    return ats

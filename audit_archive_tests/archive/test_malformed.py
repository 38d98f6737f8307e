"""Malformed chained events: never a crash, never deleted, always named by _id.

A chained event (string ``hash``) may still be unusable: no ``at`` or a non-date one,
a ``seq`` that is not an integer, a ``hash`` that is not 64 hex characters, or a
``seq`` another event has too. The run leaves such events in hot and names them; it
archives the rest of the day only when the chain around them still verifies (links
through a malformed event with an integer seq are checked like any other), and fails
with a chain break, deleting nothing, when it does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId

from audit_archive.audit.verify import Status, verify
from audit_archive.format import layout
from audit_archive.format.canonical import event_hash
from audit_archive.format.malformed import problem
from audit_archive.stores.clients import open_stores
from audit_archive_dev import seed
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import all_run_text, failure_messages

Mutation = Callable[[dict[str, Any]], None]


def chain_with(
    harness: Harness,
    day: dt.date,
    n: int,
    before_hash: dict[int, Mutation] | None = None,
    after_hash: dict[int, Mutation] | None = None,
) -> list[dict[str, Any]]:
    """``n`` chained events of ``day``; event i is changed by ``before_hash[i]`` before
    it is hashed (it stays a proper link) and by ``after_hash[i]`` after (its successor
    links to whatever ``hash`` it ends up with, as a buggy producer would)."""
    before_hash, after_hash = before_hash or {}, after_hash or {}
    first_seq, prev = harness._tail()
    start = layout.day_bounds(day)[0]
    docs = []
    for i in range(n):
        doc = {
            "_id": ObjectId(),
            **seed.make_body(harness.rng, start + dt.timedelta(minutes=10 * i), first_seq + i),
            "prevHash": prev,
        }
        if i in before_hash:
            before_hash[i](doc)
        doc["hash"] = event_hash(doc)
        if i in after_hash:
            after_hash[i](doc)
        prev = doc["hash"]
        docs.append(doc)
    harness.events.insert_many(docs)
    harness.seeded += docs
    return docs


def junk(harness: Harness, day: dt.date, **fields: Any) -> dict[str, Any]:
    """A chained-looking document that no event links to (off the chain)."""
    doc = {
        "_id": ObjectId(),
        "at": layout.day_bounds(day)[0] + dt.timedelta(hours=5),
        "source": "junk",
        "prevHash": "0" * 64,
        "hash": "ab" * 32,
        **fields,
    }
    harness.events.insert_one(doc)
    harness.seeded.append(doc)
    return doc


@pytest.mark.parametrize(
    "doc, named",
    [
        ({"seq": 1, "hash": "a" * 64}, "has no `at`"),
        ({"seq": 1, "at": "2026-01-01", "hash": "a" * 64}, "`at` is not a date"),
        ({"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "hash": "a" * 64}, "has no `seq`"),
        ({"seq": 1.0, "at": dt.datetime(2026, 1, 1), "hash": "a" * 64}, "not an integer"),
        ({"seq": "1", "at": dt.datetime(2026, 1, 1), "hash": "a" * 64}, "not an integer"),
        ({"seq": True, "at": dt.datetime(2026, 1, 1), "hash": "a" * 64}, "not an integer"),
        ({"seq": Decimal128("1"), "at": dt.datetime(2026, 1, 1), "hash": "a"}, "not an integer"),
        ({"seq": 1, "at": dt.datetime(2026, 1, 1), "hash": "A" * 64}, "64 lowercase hex"),
        ({"seq": 1, "at": dt.datetime(2026, 1, 1), "hash": "a" * 63}, "64 lowercase hex"),
        ({"seq": Int64(1), "at": dt.datetime(2026, 1, 1), "hash": "a" * 64}, None),
    ],
)
def test_what_makes_a_chained_event_malformed(doc: dict[str, Any], named: str | None) -> None:
    reason = problem(doc)
    assert (reason is None) if named is None else (named in reason)


def test_malformed_events_are_left_in_hot_and_named_while_the_rest_is_archived(
    harness: Harness,
) -> None:
    day = due_day(3)
    docs = chain_with(
        harness,
        day,
        30,
        before_hash={
            4: lambda d: d.pop("at"),  # in the chain, but of no day
            9: lambda d: d.update(at="2026-08-30T12:00:00Z"),  # a string, not a date
        },
        after_hash={15: lambda d: d.update(hash="not-a-hash")},  # successor links to it
    )
    harness.seed({due_day(-3): 3})  # the chain goes on, in days not yet due
    odd = [
        junk(harness, day, seq=docs[20]["seq"] + 0.5),  # a double between two events
        junk(harness, day, seq="x"),
        junk(harness, day),  # no seq at all
    ]
    malformed = [docs[4], docs[9], docs[15], *odd]

    result = harness.run(day)

    assert result.success, failure_messages(result)
    text = all_run_text(result)
    for doc in malformed:
        assert repr(doc["_id"]) in text, f"{doc['_id']} is named"
    archived = {e["_id"] for e in harness.part_events(day)}
    assert archived == {d["_id"] for d in docs} - {d["_id"] for d in malformed}
    for doc in malformed:
        assert harness.events.count_documents({"_id": doc["_id"]}) == 1, "never deleted"
    edges = {e["seq"] for e in harness.manifest(day)["chainEdges"]}
    assert {docs[3]["seq"], docs[5]["seq"], docs[14]["seq"], docs[16]["seq"]} <= edges

    again = harness.run(day)  # nothing new; the malformed ones are still named
    assert again.success
    assert [r["part"] for r in harness.records(day)] == [1]
    assert repr(docs[15]["_id"]) in all_run_text(again)
    # verify lists them: the day is overdue for good, and says which events and why.
    stores = open_stores(harness.settings)
    try:
        [report] = verify(stores, day, day).days
    finally:
        stores.close()
    assert report.status == Status.OVERDUE
    listed = " ".join(f.message for f in report.findings)
    for doc in (docs[15], *odd):  # the malformed events that belong to this day
        assert repr(doc["_id"]) in listed, listed
    harness.assert_invariant(
        left_in_hot=[d["_id"] for d in malformed], off_chain=[d["_id"] for d in odd]
    )


def test_a_malformed_event_the_chain_runs_through_fails_the_run_and_is_named(
    harness: Harness,
) -> None:
    """A string seq has no place in the chain, yet its successor links to it: the chain
    around it does not verify, so nothing of the day is archived or deleted."""
    day = due_day(2)
    docs = chain_with(harness, day, 12, before_hash={6: lambda d: d.update(seq=str(d["seq"]))})

    result = harness.run(day)

    assert not result.success
    message = failure_messages(result)
    assert f"seq {docs[7]['seq']}" in message and "prevHash does not match" in message
    assert repr(docs[6]["_id"]) in all_run_text(result) or repr(docs[6]["_id"]) in message
    assert harness.events.count_documents({}) == 12 and harness.records() == []
    assert harness.object_keys() == []
    # (No invariant here: by construction the chain in hot does not link, which is why
    # the run refused the day.)


def test_a_duplicate_seq_fails_the_run_naming_both_events_by_id(harness: Harness) -> None:
    day = due_day(2)
    docs = chain_with(harness, day, 10)
    twin = dict(docs[4], _id=ObjectId(), action="role.grant", actor={"id": "mallory"})
    twin["hash"] = event_hash(twin)
    harness.events.insert_one(twin)

    result = harness.run(day)

    assert not result.success
    message = failure_messages(result)
    assert f"duplicate seq {docs[4]['seq']}" in message
    assert repr(docs[4]["_id"]) in message and repr(twin["_id"]) in message
    assert harness.events.count_documents({}) == 11, "nothing deleted"
    assert harness.records() == []
    harness.assert_invariant(left_in_hot=[d["_id"] for d in docs], off_chain=[twin["_id"]])


@pytest.mark.parametrize("where", ["below", "above"])
def test_an_event_of_no_day_beyond_every_days_seqs_is_named_by_the_run_next_to_it(
    harness: Harness, where: str
) -> None:
    """An event without ``at`` whose seq lies outside every day's range (the oldest or
    the newest in the chain) is no day's to archive; the run of the day next to it in
    the chain checks the link and names it (issue 11)."""
    day = due_day(2)
    nowhere = {0: lambda d: d.pop("at")}
    if where == "below":
        docs = chain_with(harness, day, 8, before_hash=nowhere)
        stray = docs[0]
    else:
        docs = chain_with(harness, day, 8)
        [stray] = chain_with(harness, day, 1, before_hash=nowhere)

    result = harness.run(day)

    assert result.success, failure_messages(result)
    assert repr(stray["_id"]) in all_run_text(result), "named by the run"
    assert "has no `at`" in all_run_text(result)
    assert harness.events.count_documents({"_id": stray["_id"]}) == 1, "never deleted"
    harness.assert_invariant(left_in_hot=[stray["_id"]])

"""Chained events that cannot be archived as they are: what is wrong with one, in words.

An event is chained when it has a string ``hash`` (SPEC 1), but a chained event may
still be malformed: no ``at`` or an ``at`` that is not a date (it belongs to no day),
a ``seq`` that is not an integer (it has no place in the chain), or a ``hash`` that is
not 64 hex characters (no event can re-hash to it). Such an event is never archived
and never deleted; the run names it by ``_id`` and archives the rest of the day only
when the chain around it still verifies. A duplicate ``seq`` is a chain break (the
chain cannot say which event is the real one), so it fails the run, deleting nothing.

Pure: no I/O. The queries that find these events live in stores/events.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64

from audit_archive.format.chain import HEX64

WELL_FORMED_SEQ_TYPES = ["int", "long"]  # BSON types of a usable seq ($type aliases)


_DATE_TYPES = (dt.datetime, DatetimeMS)
_INT_TYPES = (int, Int64)  # the fast path's exact types; is_integer_seq decides the rest


def is_integer_seq(value: Any) -> bool:
    """The one test of a usable ``seq`` (and of any integer a reader takes from an event,
    a manifest or a record): Int32 and Int64 alike (bson.Int64 subclasses int, so never
    ``type(x) is int``), never a bool, a double or a string."""
    return isinstance(value, int) and not isinstance(value, bool)


# The one problem of an event whose seq and at are sound: its own day's run names it.
BAD_HASH = "`hash` is not 64 lowercase hex characters"


def problem(doc: Mapping[str, Any]) -> str | None:
    """Why this chained event cannot be archived, or None when it can."""
    stored = doc.get("hash")
    if (  # the usual event, checked at the cost of a few lookups (once per event archived)
        type(doc.get("seq")) in _INT_TYPES
        and type(doc.get("at")) in _DATE_TYPES
        and type(stored) is str
        and HEX64.match(stored)
    ):
        return None
    if "at" not in doc:
        return "has no `at`"
    if not isinstance(doc["at"], dt.datetime | DatetimeMS):
        return f"`at` is not a date ({type(doc['at']).__name__})"
    if "seq" not in doc:
        return "has no `seq`"
    if not is_integer_seq(doc["seq"]):
        return f"`seq` is not an integer ({type(doc['seq']).__name__} {doc['seq']!r})"
    stored = doc.get("hash")
    if not isinstance(stored, str) or not HEX64.match(stored):
        return BAD_HASH
    return None


_INT_TYPE_SET, _DATE_TYPE_SET = frozenset(_INT_TYPES), frozenset(_DATE_TYPES)


def all_usual(seqs: list[Any], ats: list[Any], hashes: list[Any]) -> bool:
    """Whether every event of a batch, given as its ``seq``, ``at`` and ``hash`` columns,
    passes problem()'s first test (so none is malformed): the same test a column at a
    time, in C (map, set), where problem() costs a Python call an event. False says
    nothing: ask problem() of each event."""
    return (
        set(map(type, seqs)) <= _INT_TYPE_SET
        and set(map(type, ats)) <= _DATE_TYPE_SET
        and set(map(type, hashes)) == {str}
        and all(map(HEX64.match, hashes))
    )


def describe(doc: Mapping[str, Any], reason: str) -> str:
    """One line that names the event by ``_id`` (and ``seq`` when it has one)."""
    seq = f", seq {doc['seq']!r}" if "seq" in doc else ""
    return f"_id {doc.get('_id')!r}{seq}: {reason}"

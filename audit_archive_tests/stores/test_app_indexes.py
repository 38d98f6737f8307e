"""The hot collection belongs to the application, and so do its indexes (issue 11).

An application that queries its audit events by time or by seq has indexes on the same
keys as the archive's, under its own names (``at_1_seq_1``, a unique ``seq_1``).
MongoDB and SecantusDB refuse a second index on the same keys under another name
(IndexOptionsConflict), so the archive uses the application's index as it is: the
first run must not fail, and the application's indexes stay exactly as they were.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING

from audit_archive.stores.events import EVENT_INDEXES
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages

AT_SEQ = [("at", ASCENDING), ("seq", ASCENDING)]
SEQ = [("seq", ASCENDING)]

# (keys, options) of the application's indexes, by shape.
SHAPES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "compound_at_seq": [(AT_SEQ, {})],
    "unique_seq": [(SEQ, {"unique": True})],
    "both_and_more": [
        (AT_SEQ, {}),
        (SEQ, {"unique": True}),
        ([("actor.id", ASCENDING), ("at", DESCENDING)], {}),
        ([("seq", DESCENDING)], {"name": "seq_newest_first"}),
    ],
    # Same keys but not one the archive can count on (only chained events): the archive
    # adds its own beside it (the servers allow that) and leaves the partial one alone.
    "partial_seq": [
        (SEQ, {"name": "chained_seq", "partialFilterExpression": {"hash": {"$exists": True}}}),
        (AT_SEQ, {"name": "by_time"}),
    ],
}


def _key(spec: dict[str, Any]) -> list[tuple[str, int]]:
    return [(field, int(direction)) for field, direction in spec["key"].items()]


# both_and_more holds compound_at_seq's and unique_seq's indexes (and others): the default
# set runs it and partial_seq; -m slow runs each alone too.
@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(s, marks=pytest.mark.slow) if s in ("compound_at_seq", "unique_seq") else s
        for s in sorted(SHAPES)
    ],
)
def test_the_first_run_uses_the_applications_indexes_and_leaves_them_alone(
    harness: Harness, shape: str
) -> None:
    for keys, options in SHAPES[shape]:
        harness.events.create_index(keys, **options)
    app_indexes = {spec["name"]: dict(spec) for spec in harness.events.list_indexes()}
    days = [due_day(2), due_day(1)]
    harness.seed({days[0]: 40, days[1]: 30, due_day(-2): 5})

    for day in days:  # the second run meets the indexes the first one left
        result = harness.run(day)
        assert result.success, failure_messages(result)

    after = {spec["name"]: dict(spec) for spec in harness.events.list_indexes()}
    for name, spec in app_indexes.items():
        assert after.get(name) == spec, f"the application's index {name} was changed or dropped"
    added = {name: _key(spec) for name, spec in after.items() if name not in app_indexes}
    for keys, _name in EVENT_INDEXES:
        plain = [
            name
            for name, spec in after.items()
            if _key(spec) == keys and not spec.get("partialFilterExpression")
        ]
        assert len(plain) == 1, f"one index serves {keys}, not {plain}"
    if shape != "partial_seq":
        app_keys = [_key(spec) for spec in app_indexes.values()]
        assert all(keys not in app_keys for keys in added.values()), (
            f"a second index on the application's keys was added: {added}"
        )
    harness.assert_invariant()

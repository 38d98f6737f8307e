"""A day's cost follows its own events, not its seq span (issue 15).

A day whose late events were chained after thousands of the next day's events has those
events between its seqs; the chain check needs only the ones next to the day's own
events. Neither the commands the run sends about the events nor the documents the
server reads for them (SecantusDB reads all the index selects) may grow with that span.
Counted, not timed: benchmarks/bench_span.py measures the time."""

from __future__ import annotations

import datetime as dt

from audit_archive_tests.support import shapes
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.querycount import counting
from audit_archive_tests.support.reliability import failure_messages

OWN = 200
FOREIGN = 3_000  # benchmarks/bench_span.py: 40,000 and 1,000,000


def _archive(harness: Harness, day: dt.date, foreign: int) -> tuple[int, int]:
    """Archive a day of OWN events, ``foreign`` of the next day's chained after its
    first half; returns (commands about the events, documents the server examined)."""
    ats = shapes.spanning_ats(day, OWN, foreign, harness.rng)
    docs = shapes.chain(ats, harness.rng, gap_rate=0.03, after=harness._tail())
    harness.events.insert_many(docs)
    harness.seeded += docs
    before = list(harness.events.find({}, {"seq": 1, "at": 1}))
    with counting(harness.settings.events_collection) as queries:
        result = harness.run(day)
    assert result.success, failure_messages(result)
    return queries.commands, queries.examined(before)


def test_reads_do_not_grow_with_the_other_days_events_in_the_span(harness: Harness) -> None:
    compact = _archive(harness, due_day(6), 0)
    spanning = _archive(harness, due_day(3), FOREIGN)

    commands, examined = spanning
    assert commands <= compact[0] + 4, (compact, spanning)
    assert examined <= compact[1] + 40, (compact, spanning)
    # the day's own events: read once (the day's read), deleted once (the purge)
    assert examined <= 2 * OWN + 60, (compact, spanning)
    harness.assert_invariant(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))

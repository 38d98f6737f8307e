"""seq stored as Int64 (NumberLong: counters, ``$inc`` on a long, several drivers) or as
both widths, crossing 2^31, is a seq like any other on the archive side (SPEC 1: the
hash scheme treats Int32 and Int64 alike): the day's holes, its neighbours in hot and in
earlier parts, the chain checks and the chainEdges of manifest and batch record."""

from __future__ import annotations

import json

import pytest

from audit_archive.cli import main
from audit_archive_tests.support import shapes
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.reliability import failure_messages


def _edges(edges: list[dict]) -> list[tuple[int, str, str]]:
    return [(e["seq"], e["prevHash"], e["hash"]) for e in edges]


@pytest.mark.parametrize("width", ["int64", "mixed", "crossing"])
def test_int64_and_mixed_seqs_archive_like_int32(
    harness: Harness, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, width: str
) -> None:
    days = [due_day(1), due_day(0)]
    # The two days interleave (late events), so each run finds the other day's events
    # between its own seqs: in hot for the first run, in the first run's part after.
    ats = shapes.interleaved_ats(days, blocks=4, per_block=6, rng=harness.rng)
    ats += shapes.interleaved_ats([due_day(-2)], blocks=1, per_block=5, rng=harness.rng)
    docs = shapes.chain(ats, harness.rng, width=width, gap_rate=0.2)
    harness.events.insert_many(docs)
    harness.seeded += docs
    monkeypatch.setenv("ARCHIVE_START_DATE", str(days[0]))
    stored = {type(d["seq"]).__name__ for d in harness.events.find({})}
    assert stored == ({"Int64"} if width == "int64" else {"int", "Int64"})

    for day in days:
        result = harness.run(day)
        assert result.success, failure_messages(result)

    for record in harness.records():
        manifest = harness.manifest(record["day"], record["part"])
        assert _edges(manifest["chainEdges"]) == _edges(record["chainEdges"])
        assert len(manifest["chainEdges"]) > 2, "the days interleave: edges at every switch"
    harness.assert_invariant()
    code = main(["verify", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, [d for d in report["days"] if d["findings"]]
    assert {d["day"]: d["status"] for d in report["days"]} == {str(d): "valid" for d in days}

"""The whole round trip holds on data shaped the way users' deployments shape it.

Hypothesis generates the archive's input, not the project's friendly seed data: chains
whose ``seq`` are Int32, Int64 or both (crossing 2^31), payloads of every BSON type and
objects an Extended JSON parser would take for type wrappers, late events chained far
(in seq) from the rest of their day, and hot collections that already carry the
application's own indexes. For each shape the real job archives every due day, and then:

- ``verify`` and ``verify --deep`` say every day is ``valid`` (exit 0);
- ``prove`` writes a proof for an event and ``check-proof`` accepts it;
- ``search --seq`` finds that event;
- ``restore`` gives back documents identical (types included) to the hot ones;
- the application's indexes are still there, unchanged.

The default run tries a few shapes; ``-m slow`` tries many more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from bson import Int64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.canonical import ZERO_HASH, event_hash
from audit_archive.format.jsonl import parse_line
from audit_archive_tests.support.harness import Harness, due_day, same_value
from audit_archive_tests.support.samples import EVERY_BSON_TYPE, INT32_MAX, WRAPPER_LOOKALIKES

DAYS = [due_day(2), due_day(1), due_day(0)]

# What applications put on their own audit collections, under their own names.
APP_INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "none": [],
    "at_1_seq_1": [([("at", 1), ("seq", 1)], {"name": "at_1_seq_1"})],
    "unique seq": [([("seq", 1)], {"name": "seq_1", "unique": True})],
    "app-named": [
        ([("seq", 1)], {"name": "audit_seq_unique", "unique": True}),
        ([("at", -1)], {"name": "recent_first"}),
        ([("actor.id", 1), ("at", 1)], {"name": "by_actor"}),
    ],
}

payload_fields = st.dictionaries(
    st.sampled_from(sorted(EVERY_BSON_TYPE)),
    st.just(None),
    max_size=6,
).map(lambda keys: {k: EVERY_BSON_TYPE[k] for k in keys})
lookalikes = st.sampled_from(WRAPPER_LOOKALIKES)
payloads = st.tuples(payload_fields, st.lists(lookalikes, max_size=2)).map(
    lambda pair: {**pair[0], **{f"q{i}": v for i, v in enumerate(pair[1])}}
)


@dataclasses.dataclass(frozen=True)
class Shape:
    width: str  # "int32", "int64" or "mixed"
    counts: tuple[int, int, int]  # events per day of DAYS, before the late ones
    late: int  # events of DAYS[0] chained after every other day's events
    late_gap: int  # seqs burned before the late events
    indexes: str
    payloads: tuple[dict[str, Any], ...]


shapes = st.builds(
    Shape,
    width=st.sampled_from(["int32", "int64", "mixed"]),
    counts=st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(1, 4)),
    late=st.integers(0, 2),
    late_gap=st.sampled_from([1, 1_000, 2**20]),
    indexes=st.sampled_from(sorted(APP_INDEXES)),
    payloads=st.lists(payloads, min_size=14, max_size=14).map(tuple),
)


def _seq_value(seq: int, width: str, index: int) -> int:
    """A seq as the application's driver would store it."""
    if width == "int64":
        return Int64(seq)
    if width == "mixed" and index % 2:
        return Int64(seq)  # some small seqs as NumberLong too; large ones are Int64 anyway
    return seq


def build_chain(shape: Shape) -> list[dict[str, Any]]:
    """The events of a shape, chained in seq order (SPEC section 1)."""
    first = {"int32": 1, "int64": 2**40, "mixed": INT32_MAX - 5}[shape.width]
    ats: list[dt.datetime] = []
    for day, count in zip(DAYS, shape.counts, strict=True):
        start = layout.day_bounds(day)[0]
        ats += [start + dt.timedelta(hours=1 + 3 * i) for i in range(count)]
    late_start = layout.day_bounds(DAYS[0])[0] + dt.timedelta(hours=23)
    late = [late_start + dt.timedelta(minutes=i) for i in range(shape.late)]

    events: list[dict[str, Any]] = []
    seq, prev = first, ZERO_HASH
    for i, at in enumerate(ats + late):
        if i == len(ats):
            seq += shape.late_gap
        doc = {
            "seq": _seq_value(seq, shape.width, i),
            "at": at,
            "source": "app",
            "action": "user.search",
            "actor": {"id": f"u{i}"},
            "meta": shape.payloads[i % len(shape.payloads)],
            "prevHash": prev,
        }
        doc["hash"] = event_hash(doc)
        events.append(doc)
        seq, prev = seq + 1, doc["hash"]
    return events


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def check_round_trip(h: Harness, shape: Shape, capsys, tmp_path) -> None:
    for keys, options in APP_INDEXES[shape.indexes]:
        h.events.create_index(keys, **options)
    app_indexes = h.events.index_information()
    events = build_chain(shape)
    h.events.insert_many([dict(e) for e in events])
    hot = {d["_id"]: d for d in h.events.find({})}

    for day in DAYS:
        result = h.run(day)
        assert result.success, (shape, day)
    assert h.events.count_documents({}) == 0
    # The application's indexes: all there, with the same definition.
    after = h.events.index_information()
    assert {name: after.get(name) for name in app_indexes} == app_indexes

    for mode in ([], ["--deep"]):
        code, out = run_cli(capsys, "verify", "--json", *mode)
        report = json.loads(out)
        assert code == 0, (mode, report)
        statuses = {d["day"]: d["status"] for d in report["days"]}
        for day, count in zip(DAYS, shape.counts, strict=True):
            late = shape.late if day == DAYS[0] else 0
            assert statuses[str(day)] == ("valid" if count + late else "empty"), (mode, report)

    target = events[len(events) // 2]
    proof = tmp_path / f"proof-{target['seq']}.json"
    assert run_cli(capsys, "prove", "--seq", str(target["seq"]), "--out", str(proof))[0] == 0
    assert run_cli(capsys, "check-proof", str(proof))[0] == 0

    day = str(target["at"].date())
    code, out = run_cli(capsys, "search", "--from", day, "--to", day, "--seq", str(target["seq"]))
    assert code == 0
    assert [parse_line(line)["hash"] for line in out.splitlines()] == [target["hash"]]

    restored = {}
    for day in DAYS:
        assert run_cli(capsys, "restore", "--day", str(day), "--into", "restored")[0] == 0
    restored = {d["_id"]: d for d in h.db["restored"].find({})}
    assert restored.keys() == hot.keys()
    for _id, original in hot.items():
        assert same_value(restored[_id], original), _id
        assert event_hash(restored[_id]) == original["hash"]


def _examples(n: int) -> Callable:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@_examples(4)
@given(shape=shapes)
def test_any_shape_of_users_data_archives_verifies_proves_searches_and_restores(
    archive_factory: Callable[[], Harness], capsys, tmp_path_factory, shape: Shape
) -> None:
    h = archive_factory(ARCHIVE_START_DATE=str(DAYS[0]))
    check_round_trip(h, shape, capsys, tmp_path_factory.mktemp("proofs"))


@pytest.mark.slow
@_examples(40)
@given(shape=shapes)
def test_many_shapes_of_users_data_round_trip(
    archive_factory: Callable[[], Harness], capsys, tmp_path_factory, shape: Shape
) -> None:
    h = archive_factory(ARCHIVE_START_DATE=str(DAYS[0]))
    check_round_trip(h, shape, capsys, tmp_path_factory.mktemp("proofs"))

"""SPEC 3: every line the archive writes reads back as its stored document and re-hashes;
a document that would not (a payload object an Extended JSON parser takes for a type
wrapper, such as a recorded query filter ``{"$regex": "^adm"}``) is written as the
``{"bson": "<base64>"}`` line of its BSON bytes exactly as stored.

The encoder proves most lines readable by counting (fastcodec.unproven_lines) and reads back
only the others; hypothesis checks that every line, proven or checked, reads back.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_archive.archive.encode import encode
from audit_archive.archive.results import Extracted, PartRef
from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, ZERO_HASH, event_hash
from audit_archive.format.jsonl import bson_of_line, parse_line
from audit_archive_dev import seed
from audit_archive_tests.support.encoding import archive_lines
from audit_archive_tests.support.harness import Harness, due_day, same_value
from audit_archive_tests.support.reliability import append_events, failure_messages
from audit_archive_tests.support.samples import EVERY_BSON_TYPE, WRAPPER_LOOKALIKES

# The objects the issue names, and wrappers that parse (the worst case: they read back
# as another type, not as an error).
ISSUE_LOOKALIKES: list[dict[str, Any]] = [
    {"email": {"$regex": "@example\\.com$", "$options": "i"}},
    {"$regex": "^adm"},
    {"$date": "yesterday"},
    {"$oid": "nothex"},
    {"$numberLong": "x"},
    {"$date": "2026-01-01T00:00:00Z"},
    {"$date": {"$numberLong": "5"}},
    {"$oid": "0123456789abcdef01234567"},
    {"$numberLong": "5"},
    {"$binary": "odd"},
    {"$binary": {"base64": "AA==", "subType": "00"}},
    {"$binary": {"base64": 1}},
    {"$binary": "AA==", "$type": "00"},
    {"$uuid": "12345678-1234-5678-1234-567812345678"},
    {"$numberDouble": "NaN"},
    {"$numberDecimal": "1.5"},
    {"$timestamp": {"t": 1, "i": 2}},
    {"$regularExpression": {"pattern": "a", "options": "i"}},
    {"$minKey": 1},
    {"$symbol": "s"},
    {"$code": "f()", "$scope": {}},
    {"$undefined": True},
]
# "$" keys that read back as the stored document decodes: no wrapper, or a DBRef (which
# BSON decoding makes of such an object too).
HARMLESS = [
    {"$": 1},
    {"$set": {"role": "admin"}, "$inc": {"n": 1}},
    {"$in": ["$a"]},
    {"$ref": "users", "$id": 5},
]
# What reads back as something else, or not at all.
MISREAD = ISSUE_LOOKALIKES + [x for x in WRAPPER_LOOKALIKES if "update" not in x and "ref" not in x]

DOLLAR_KEYS = [
    "$regex", "$options", "$date", "$oid", "$numberLong", "$binary", "$type", "$ref", "$id",
    "$db", "$code", "$scope", "$uuid", "$numberDouble", "$numberDecimal", "$numberInt",
    "$timestamp", "$minKey", "$maxKey", "$undefined", "$symbol", "$dbPointer",
    "$regularExpression", "$", "$set", "$in",
]  # fmt: skip


def stored(payload: dict[str, Any], seq: int = 7) -> bytes:
    """A chained event with this payload as BSON bytes (what MongoDB holds)."""
    at = dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC)
    event = {"_id": ObjectId(), "seq": seq, "at": at, "prevHash": ZERO_HASH, **payload}
    event["hash"] = event_hash(bson.decode(bson.encode(event), EVENT_CODEC_OPTIONS))
    return bson.encode(event)


def assert_every_line_reads_back(raws: list[bytes]) -> list[bytes]:
    lines, _ = archive_lines(raws)
    for line, raw in zip(lines, raws, strict=True):
        original = bson.decode(raw, EVENT_CODEC_OPTIONS)
        back = parse_line(line)
        assert event_hash(back) == original["hash"], line
        assert same_value(back, original), line
        assert list(back) == list(original), "field order is kept"
        carried = bson_of_line(json.loads(line))
        assert carried is None or carried == raw, "a bson line carries the stored bytes"
    return lines


def is_bson_line(line: bytes) -> bool:
    return line.startswith(b'{"bson":"')


@pytest.mark.parametrize("lookalike", MISREAD, ids=repr)
def test_a_wrapper_lookalike_is_written_as_its_stored_bson(lookalike: dict[str, Any]) -> None:
    raw = stored({"payload": {"filter": [lookalike]}})
    [line] = assert_every_line_reads_back([raw])
    assert line == b'{"bson":"' + base64.b64encode(raw) + b'"}\n'


def test_a_lookalike_at_the_top_level_of_the_payload_too() -> None:
    for lookalike in ISSUE_LOOKALIKES:
        [line] = assert_every_line_reads_back([stored(lookalike)])
        assert is_bson_line(line), lookalike


def test_dollar_strings_and_harmless_dollar_keys_stay_readable_json() -> None:
    """A "$" text in an array, or a "$" key no parser takes for a wrapper (an update
    operator), is checked and, reading back, kept as JSON for jq and mongoimport. An
    object of ``$ref`` and ``$id`` is a DBRef once decoded: its keys are the encoder's
    own, counted like any wrapper's (its stored order checked against the bytes)."""
    raws = [stored({"tags": ["a", "$b", "$date"]}), *(stored({"x": [h]}) for h in HARMLESS)]
    raws.append(stored({"note": '{"$date": "2026-01-01"}, "$oid"'}))  # in a string: no key
    dbref = 1 + HARMLESS.index({"$ref": "users", "$id": 5})
    lines, unproven = archive_lines(raws)
    assert unproven == [i for i in range(len(raws) - 1) if i != dbref]
    assert not any(map(is_bson_line, lines))
    assert_every_line_reads_back(raws)


def test_events_without_dollar_keys_are_proven_without_reading_back() -> None:
    rng = __import__("random").Random(4)
    events = list(seed.chain(seed.day_times(dt.date(2026, 8, 30), 200, rng), rng=rng))
    raws = [bson.encode(e) for e in events]
    lines, unproven = archive_lines(raws)
    assert unproven == []
    assert not any(map(is_bson_line, lines))


def test_one_lookalike_in_a_batch_is_found_among_proven_lines() -> None:
    """The batch's joined count differs, so the lines are counted one by one: only the
    lookalike's line is checked and replaced."""
    raws = [stored({"n": i}, seq=i) for i in range(50)]
    raws[31] = stored({"q": {"$regex": "^adm"}}, seq=31)
    lines, unproven = archive_lines(raws)
    assert unproven == [31]
    assert [i for i, line in enumerate(lines) if is_bson_line(line)] == [31]


def test_every_bson_type_reads_back() -> None:
    assert_every_line_reads_back([stored(EVERY_BSON_TYPE)])
    assert_every_line_reads_back([stored({k: v}) for k, v in EVERY_BSON_TYPE.items()])


_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=6)
_keys = st.sampled_from(DOLLAR_KEYS) | _text | st.sampled_from(["bson", "seq", "hash", "t"])
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.sampled_from(DOLLAR_KEYS),  # "$" texts, also in arrays
    st.sampled_from(list(EVERY_BSON_TYPE.values())),
    st.sampled_from(MISREAD + HARMLESS),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_payloads = st.dictionaries(
    _keys.filter(lambda k: k not in ("_id", "seq", "at", "prevHash", "hash")), _values, max_size=4
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_payloads, min_size=1, max_size=5))
def test_every_line_written_reads_back_and_re_hashes(payloads: list[dict[str, Any]]) -> None:
    """Soundness of the count: random nested payloads with random "$" keys, "$" texts and
    wrapper look-alikes, several to a batch; whichever lines the encoder proves by
    counting and whichever it checks, each reads back as its stored document."""
    assert_every_line_reads_back([stored(p, seq=i) for i, p in enumerate(payloads)])


# -- end to end: the job, verify --deep, restore, prove and check-proof -----------------


def test_lookalikes_survive_the_job_verify_restore_and_proofs(
    harness: Harness, capsys, tmp_path
) -> None:
    day = due_day(2)
    start = layout.day_bounds(day)[0]
    payloads = [{"n": 0}] + [{"filter": x} for x in ISSUE_LOOKALIKES[:6] + WRAPPER_LOOKALIKES]
    events = append_events(
        harness,
        [start + dt.timedelta(minutes=i) for i in range(len(payloads))],
        payloads.__getitem__,
    )
    originals = {
        e["_id"]: e for e in harness.events.find({"_id": {"$in": [e["_id"] for e in events]}})
    }
    assert len(originals) == len(payloads)

    result = harness.run(day)

    assert result.success, failure_messages(result)
    key = layout.jsonl_key(harness.settings.cold_prefix, layout.format_day(day), 1)
    lines = gzip.decompress(harness.get(key)).splitlines()
    # {"n"}, the update operators and the DBRef stay JSON
    assert sum(map(is_bson_line, lines)) == len(payloads) - 3
    assert main(["verify", "--json", "--deep", "--from", str(day), "--to", str(day)]) == 0, (
        capsys.readouterr().out
    )
    capsys.readouterr()

    assert main(["restore", "--day", str(day)]) == 0
    back = {d["_id"]: d for d in harness.db["auditevents_restored"].find({})}
    assert set(back) == set(originals)
    for _id, original in originals.items():
        assert same_value(back[_id], original)
        assert list(back[_id]) == list(original)
        assert event_hash(back[_id]) == original["hash"]


def test_a_lookalike_event_is_proven_and_its_proof_checked(
    harness: Harness, capsys, tmp_path
) -> None:
    day = due_day(2)
    start = layout.day_bounds(day)[0]
    payloads = [{"n": 0}, {"filter": ISSUE_LOOKALIKES[0]}, {"n": 2}]
    events = append_events(
        harness, [start + dt.timedelta(minutes=i) for i in range(3)], payloads.__getitem__
    )
    assert harness.run(day).success
    target = events[1]  # the {"$regex": ..., "$options": ...} filter, a bson line
    path = tmp_path / "proof.json"
    assert main(["prove", "--seq", str(target["seq"]), "--out", str(path)]) == 0
    assert main(["check-proof", str(path)]) == 0
    assert f"valid: seq {target['seq']}" in capsys.readouterr().out


def test_the_bson_line_carries_its_own_events_bytes_after_a_malformed_one(tmp_path) -> None:
    """encode() drops a malformed event (left in hot) from the batch; the lookalike
    after it is still written with its own stored bytes, not its neighbour's."""
    at = dt.datetime(2026, 8, 30, 12, tzinfo=dt.UTC)
    docs, prev = [], ZERO_HASH
    for seq, extra in enumerate([{}, {"x": 1}, {"q": {"$regex": "^adm"}}, {}], start=1):
        doc = {"_id": ObjectId(), "seq": seq, "at": at, **extra, "prevHash": prev}
        doc["hash"] = event_hash(doc)
        if seq == 2:
            del doc["at"]  # malformed: no `at` (it stays a link of the chain)
        prev = doc["hash"]
        docs.append(doc)
    raws = [bson.encode(d) for d in docs]
    ref = PartRef(dt.date(2026, 8, 30), 1, "test", "token", str(tmp_path))
    Path(ref.events_path).write_bytes(b"".join(raws))
    Path(ref.neighbours_path).write_text("")
    staged = Extracted(ref, 4, 1, 4, None, None)

    encoded = encode(staged, "audit", 1000)

    lines = gzip.decompress(Path(ref.jsonl_path).read_bytes()).splitlines()
    assert [parse_line(line)["seq"] for line in lines] == [1, 3, 4]
    assert lines[1] == b'{"bson":"' + base64.b64encode(raws[2]) + b'"}'
    assert not is_bson_line(lines[0]) and not is_bson_line(lines[2])
    assert len(encoded.malformed) == 1 and "has no `at`" in encoded.malformed[0]

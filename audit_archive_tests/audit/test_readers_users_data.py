"""prove, check-proof, search, restore and archives on data shaped like users' data, as
the job archives it: seqs stored as Int32 below 2^31 and Int64 above it (one day
crossing), payloads of every BSON type, and recorded query filters whose objects an
Extended JSON parser takes for type wrappers, which the archive writes as
``{"bson": ...}`` lines (SPEC 3; issues 11 and 17)."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from bson import Int64
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, event_hash
from audit_archive.format.jsonl import parse_line
from audit_archive_dev import seed
from audit_archive_dev.embedded import Stack
from audit_archive_tests.support import shapes
from audit_archive_tests.support.harness import Harness, due_day, point_archive_at, same_value
from audit_archive_tests.support.samples import EVERY_BSON_TYPE, WRAPPER_LOOKALIKES

DAY = due_day(3)
N = 60
RECORDED_FILTER = "query.recorded"
# SecantusDB cannot store dates past year 9999 (test_jsonl covers them).
PAYLOAD = {k: v for k, v in EVERY_BSON_TYPE.items() if k != "farDate"}
LOOKALIKES = [
    {"filter": {"name": {"$regex": "^adm", "$options": "i"}}},
    {"when": {"$date": "yesterday"}},
    *WRAPPER_LOOKALIKES,
]


def users_day() -> list[dict[str, Any]]:
    """One day's chain crossing 2^31 (Int32, then Int64), with one event carrying every
    BSON type and several carrying wrapper look-alikes, every link re-hashed."""
    rng = random.Random(11)
    docs = shapes.chain(seed.day_times(DAY, N, rng), rng, width="crossing", gap_rate=0)
    prev = docs[0]["prevHash"]
    for i, doc in enumerate(docs):
        if i == 5:
            doc.update(PAYLOAD)
        if 10 <= i < 10 + len(LOOKALIKES):
            doc.update(LOOKALIKES[i - 10], action=RECORDED_FILTER)
        doc["prevHash"] = prev
        doc["hash"] = event_hash(doc)
        prev = doc["hash"]
    return docs


@pytest.fixture(scope="module")
def archived(
    stack: Stack, mongo_client: MongoClient, tmp_path_factory
) -> Iterator[tuple[Harness, list[dict[str, Any]], dict[Any, bytes]]]:
    """The day archived by the job; its documents and their BSON bytes as stored."""
    with pytest.MonkeyPatch.context() as mp:
        h = point_archive_at(
            stack, mongo_client, mp, "usersdata", str(tmp_path_factory.mktemp("users-work"))
        )
        docs = users_day()
        h.events.insert_many(docs)
        h.seeded += docs
        raw = h.db.get_collection(
            h.settings.events_collection,
            codec_options=EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument),
        )
        stored = {d["_id"]: d.raw for d in raw.find({})}
        assert h.run(DAY).success
        assert h.events.count_documents({}) == 0
        # The documents as MongoDB gives them back (a subtype-0 Binary comes back bytes).
        docs = [bson.decode(stored[d["_id"]], EVENT_CODEC_OPTIONS) for d in docs]
        yield h, docs, stored
    mongo_client.drop_database(h.settings.database)


def bson_line_seqs(h: Harness) -> set[int]:
    body = gzip.decompress(h.get(layout.jsonl_key("audit", DAY, 1)))
    return {parse_line(line)["seq"] for line in body.splitlines() if line.startswith(b'{"bson":')}


def test_the_day_has_both_line_forms_and_both_integer_widths(archived) -> None:
    h, docs, _ = archived
    assert {docs[i]["seq"] for i in range(10, 14)} <= bson_line_seqs(h)
    assert type(docs[0]["seq"]) is int and docs[0]["seq"] < 2**31 <= docs[-1]["seq"]
    stored_seqs = [d["seq"] for d in h.part_events(DAY)]
    assert stored_seqs == [d["seq"] for d in docs]


@pytest.mark.parametrize("which", ["int32", "int64", "every-type", "bson-line", "last"])
def test_prove_and_check_proof(archived, which: str, tmp_path, capsys) -> None:
    _, docs, _ = archived
    index = {"int32": 0, "int64": 45, "every-type": 5, "bson-line": 10, "last": N - 1}[which]
    seq = docs[index]["seq"]
    path = tmp_path / "proof.json"

    assert main(["prove", "--seq", str(seq), "--out", str(path)]) == 0

    proof = json.loads(path.read_text())
    assert proof["leafIndex"] == index and proof["treeSize"] == N
    assert proof["eventLine"].startswith('{"bson":') == (which == "bson-line")
    assert same_value(parse_line(proof["eventLine"]), docs[index])
    assert main(["check-proof", str(path)]) == 0
    assert f"valid: seq {seq} in {DAY} part 1" in capsys.readouterr().out


def test_search_by_seq_finds_int32_int64_and_bson_line_events(archived, capsysbinary) -> None:
    _, docs, _ = archived
    for index in (0, 45, 10, 11):
        seq = docs[index]["seq"]
        assert main(["search", "--from", str(DAY), "--to", str(DAY), "--seq", str(seq)]) == 0
        out = capsysbinary.readouterr().out.decode().splitlines()
        assert [parse_line(line)["_id"] for line in out] == [docs[index]["_id"]], index


def test_search_matches_bson_lines_by_their_decoded_fields(archived, capsysbinary) -> None:
    _, docs, _ = archived
    code = main(["search", "--from", str(DAY), "--to", str(DAY), "--action", RECORDED_FILTER])
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    found = [parse_line(line) for line in out.splitlines()]
    expected = [d for d in docs if d["action"] == RECORDED_FILTER]
    assert len(found) == len(LOOKALIKES) == len(expected)
    for got, want in zip(found, expected, strict=True):
        assert same_value(got, want)
    assert found[0]["filter"] == {"name": {"$regex": "^adm", "$options": "i"}}
    assert found[1]["when"] == {"$date": "yesterday"}


def test_restore_inserts_the_exact_stored_documents(archived, capsys) -> None:
    h, docs, stored = archived
    into = "restored_users"

    assert main(["restore", "--day", str(DAY), "--into", into]) == 0
    assert f"({N} new, 0 already there)" in capsys.readouterr().out

    raw = h.db.get_collection(
        into, codec_options=EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument)
    )
    back = {d["_id"]: d.raw for d in raw.find({})}
    assert set(back) == set(stored)
    bson_seqs = bson_line_seqs(h)
    for doc in docs:
        restored = h.db[into].find_one({"_id": doc["_id"]})
        assert same_value(restored, doc) and event_hash(restored) == doc["hash"]
        if doc["seq"] in bson_seqs:
            assert back[doc["_id"]] == stored[doc["_id"]], "a bson line restores byte for byte"
    assert type(h.db[into].find_one({"_id": docs[-1]["_id"]})["seq"]) is Int64

    assert main(["restore", "--day", str(DAY), "--into", into]) == 0, "idempotent"
    assert f"(0 new, {N} already there)" in capsys.readouterr().out


def test_archives_lists_int64_seq_ranges(archived, capsys) -> None:
    _, docs, _ = archived
    assert main(["archives", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["batches"]
    assert (row["startSeq"], row["endSeq"]) == (docs[0]["seq"], docs[-1]["seq"])
    assert main(["archives"]) == 0
    assert f"{docs[0]['seq']}-{docs[-1]['seq']}" in capsys.readouterr().out

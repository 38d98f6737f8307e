"""bsonpeek reads an event's seq and hash from raw BSON exactly as decoding would."""

from __future__ import annotations

import datetime as dt
import re

import bson
import pytest
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

from audit_archive.format import bsonpeek

# Every BSON type pymongo writes, so the walk must step over each one to reach seq.
EVERY_TYPE: dict[str, object] = {
    "double": 1.5,
    "string": "hé\x00llo",
    "document": {"a": [1, {"b": None}]},
    "array": [1, "two", 3.0],
    "binary": Binary(b"\x00\x01", 4),
    "bytes": b"\xff",
    "objectid": ObjectId(),
    "bool": True,
    "date": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    "null": None,
    "regex": Regex("a.c", "i"),
    "dbref": DBRef("c", 1),
    "code": Code("x"),
    "code_with_scope": Code("x", {"y": 1}),
    "int32": 7,
    "timestamp": Timestamp(1, 2),
    "int64": Int64(2**40),
    "decimal": Decimal128("1.10"),
    "minkey": MinKey(),
    "maxkey": MaxKey(),
    "pattern": re.compile("x"),
}


def peek(doc: dict) -> tuple[int | None, str | None]:
    raw = bson.encode(doc)
    [(start, end)] = bsonpeek.documents(raw)
    return bsonpeek.int_seq(raw, start, end), bsonpeek.string(raw, start, end, b"hash")


@pytest.mark.parametrize(
    ("seq", "expected"),
    [(5, 5), (-3, -3), (Int64(2**62), 2**62), (5.0, None), ("5", None), (None, None)],
)
def test_only_an_int32_or_int64_seq_is_read_as_one(seq: object, expected: int | None) -> None:
    assert peek({"_id": ObjectId(), "seq": seq})[0] == expected


def test_seq_is_found_after_elements_of_every_type_and_when_missing_is_none() -> None:
    assert peek({**EVERY_TYPE, "seq": 42, "hash": "ab"}) == (42, "ab")
    assert peek({"_id": "not-an-objectid", "seq": 42}) == (42, None)  # not the fast path
    assert peek(EVERY_TYPE) == (None, None)


def test_a_nested_seq_or_hash_is_not_the_events() -> None:
    assert peek({"_id": ObjectId(), "meta": {"seq": 1, "hash": "x"}}) == (None, None)
    assert peek({"_id": ObjectId(), "seq": 3, "hash": 7}) == (3, None)  # not a string


def test_documents_splits_a_batch_as_the_decoder_does() -> None:
    docs = [{"_id": ObjectId(), "seq": i, "pad": "x" * i} for i in range(50)]
    raw = b"".join(bson.encode(d) for d in docs)
    seqs = [bsonpeek.int_seq(raw, s, e) for s, e in bsonpeek.documents(raw)]
    assert seqs == [d["seq"] for d in bson.decode_all(raw)]
    mixed = [{"_id": ObjectId(), "seq": Int64(7)}, {"seq": 8}, {"_id": ObjectId(), "seq": "9"}]
    raw += b"".join(bson.encode(d) for d in mixed)
    assert bsonpeek.int_seqs(raw) == [*seqs, 7, 8, None]


def test_a_staged_file_is_read_in_pieces_of_whole_documents(tmp_path) -> None:
    docs = [{"_id": ObjectId(), "seq": i, "pad": "x" * (i * 37 % 500)} for i in range(300)]
    docs.append({"_id": ObjectId(), "seq": 300, "big": "y" * 5000})  # bigger than a piece
    path = tmp_path / "staged.bson"
    path.write_bytes(b"".join(bson.encode(d) for d in docs))
    with open(path, "rb") as f:
        pieces = list(bsonpeek.whole_documents(f, chunk=1024))
    assert len(pieces) > 10
    assert [d for piece in pieces for d in bson.decode_all(piece)] == docs


def test_a_truncated_staged_file_is_an_error_not_fewer_events(tmp_path) -> None:
    path = tmp_path / "staged.bson"
    path.write_bytes(bson.encode({"seq": 1}) + bson.encode({"seq": 2})[:-3])
    with open(path, "rb") as f, pytest.raises(ValueError, match="truncated"):
        list(bsonpeek.whole_documents(f))

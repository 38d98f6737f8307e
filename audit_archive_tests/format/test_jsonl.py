"""JSONL lines are Relaxed Extended JSON v2 (mongoexport's format) in deterministic gzip."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zlib

from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp, decode, encode, json_util
from bson.datetime_ms import DatetimeMS

from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, RELAXED_JSON_OPTIONS
from audit_archive.format.jsonl import GzipJsonlWriter, iter_gzip_lines, parse_line, relaxed_line
from audit_archive_tests.support.harness import same_value

EVERY_TYPE = {
    "_id": ObjectId("64f0c0ffee0123456789abcd"),
    "seq": 1446,
    "big": Int64(2**62),
    "at": dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC),
    "whole_second": dt.datetime(2026, 8, 30, 12, 0, 0, tzinfo=dt.UTC),
    "before_1970": dt.datetime(1960, 1, 1, 0, 0, 0, 5000, tzinfo=dt.UTC),
    "after_9999": DatetimeMS(253402300800000 + 1000),
    "floats": [2.0, 0.1, -0.0, 1e300, float("nan"), float("inf"), float("-inf")],
    "decimal": Decimal128("-1.5E+10"),
    "decimal_nan": Decimal128("NaN"),
    "bytes": b"\x00\x01\xff",
    "uuid": Binary(b"\x12" * 16, 4),
    "user_binary": Binary(b"x", 0x80),
    "regex": Regex("^a.*z$", "imsx"),
    "ts": Timestamp(1_700_000_000, 3),
    "nested": {"list": [1, "two", None, True, {"deep": ["é", "✓", "\u2028"]}]},
}


def stored(doc: dict) -> dict:
    """What a document looks like when read back from MongoDB."""
    return decode(encode(doc), EVENT_CODEC_OPTIONS)


def test_a_line_is_the_json_util_relaxed_document_compactly_written() -> None:
    doc = stored(EVERY_TYPE)
    line = relaxed_line(doc)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == json.loads(json_util.dumps(doc, json_options=RELAXED_JSON_OPTIONS))


def test_a_line_is_compact_utf8_in_field_order_byte_for_byte() -> None:
    """A known answer: no whitespace, non-ASCII (U+2028 too) as itself, fields as stored."""
    doc = {
        "_id": ObjectId("64f0c0ffee0123456789abcd"),
        "seq": Int64(1446),
        "at": dt.datetime(2026, 8, 30, 12, 0, 0, 123000, tzinfo=dt.UTC),
        "whole": dt.datetime(2026, 8, 30, 12, 0, 0, tzinfo=dt.UTC),
        "old": DatetimeMS(-1000),
        "x": [0.1, -0.0, float("nan")],
        "b": Binary(b"\x12" * 16, 4),
        "é": "✓ \u2028",
    }
    assert relaxed_line(stored(doc)) == (
        '{"_id":{"$oid":"64f0c0ffee0123456789abcd"},"seq":1446,'
        '"at":{"$date":"2026-08-30T12:00:00.123Z"},"whole":{"$date":"2026-08-30T12:00:00Z"},'
        '"old":{"$date":{"$numberLong":"-1000"}},"x":[0.1,-0.0,{"$numberDouble":"NaN"}],'
        '"b":{"$binary":{"base64":"EhISEhISEhISEhISEhISEg==","subType":"04"}},'
        '"é":"✓ \u2028"}\n'
    )


def test_every_bson_type_reads_back_unchanged() -> None:
    doc = stored(EVERY_TYPE)
    back = parse_line(relaxed_line(doc))
    assert same_value(back, doc)
    assert list(back) == list(doc), "field order is kept"


def test_relaxed_forms_of_dates_and_numbers() -> None:
    line = json.loads(relaxed_line(stored(EVERY_TYPE)))
    assert line["at"] == {"$date": "2026-08-30T12:00:00.123Z"}
    assert line["whole_second"] == {"$date": "2026-08-30T12:00:00Z"}
    assert line["before_1970"] == {"$date": {"$numberLong": "-315619199995"}}
    assert line["big"] == 2**62 and line["seq"] == 1446
    assert line["floats"][:4] == [2.0, 0.1, -0.0, 1e300]
    assert line["floats"][4:] == [
        {"$numberDouble": "NaN"},
        {"$numberDouble": "Infinity"},
        {"$numberDouble": "-Infinity"},
    ]
    assert line["uuid"] == {"$binary": {"base64": "EhISEhISEhISEhISEhISEg==", "subType": "04"}}


def test_gzip_output_is_deterministic_and_its_sha256_is_of_the_file(tmp_path) -> None:
    docs = [stored({**EVERY_TYPE, "_id": ObjectId(f"{i:024x}"), "seq": i}) for i in range(3000)]
    outputs = []
    for name in ("a.jsonl.gz", "b.jsonl.gz"):
        with GzipJsonlWriter(tmp_path / name) as writer:
            for doc in docs:
                writer.write_line(relaxed_line(doc))
            written = writer.close()
        data = (tmp_path / name).read_bytes()
        assert written.sha256 == hashlib.sha256(data).hexdigest()
        assert written.bytes == len(data) and written.lines == 3000
        assert written.bytes_uncompressed == len(gzip.decompress(data))
        outputs.append(data)
    assert outputs[0] == outputs[1]
    header = outputs[0][:10]
    assert header[3] & 0x08 == 0, "no file name"
    assert header[4:8] == b"\0\0\0\0", "mtime 0"
    assert [parse_line(x)["seq"] for x in gzip.decompress(outputs[0]).splitlines()] == list(
        range(3000)
    )


def test_streamed_decompression_yields_every_line_across_chunk_borders() -> None:
    payload = b"".join(f'{{"n":{i}}}\n'.encode() for i in range(10_000))
    data = gzip.compress(payload)
    chunks = (data[i : i + 333] for i in range(0, len(data), 333))
    assert [json.loads(x)["n"] for x in iter_gzip_lines(chunks)] == list(range(10_000))


def test_a_truncated_stream_is_an_error() -> None:
    data = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = data.compress(b'{"a":1}\n' * 1000) + data.flush()
    try:
        list(iter_gzip_lines(iter([body[:-20]])))
    except ValueError as e:
        assert "truncated" in str(e)
    else:
        raise AssertionError("a truncated gzip stream must not read as complete")

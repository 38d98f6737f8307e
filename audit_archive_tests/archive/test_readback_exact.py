"""SPEC 3 (amended): a line "reads back" only if what it reads back as is the stored
document bit for bit, judged on the stored BSON bytes, not on a decode that already lost
the difference. Only the integer width (Int32 or Int64) may differ. Every other document
is written as the ``{"bson": ...}`` line of its stored bytes, so restore gives back
exactly what was in hot.

The stored documents are built here byte by byte: the embedded MongoDB normalizes some
of these values on insert (NaN payloads, symbol), and no driver writes duplicate names.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import struct

import bson
import pytest
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.cli import main
from audit_archive.format import bsonpeek, layout
from audit_archive.format.canonical import EVENT_CODEC_OPTIONS, ZERO_HASH, event_hash
from audit_archive.format.jsonl import (
    bson_of_line,
    parse_line,
    read_line,
    reads_back,
    relaxed_line,
)
from audit_archive_dev import seed
from audit_archive_tests.support.encoding import archive_lines
from audit_archive_tests.support.harness import Harness, due_day
from audit_archive_tests.support.rawbson import cstring, document, element, string


def event(*payload: bytes, seq: int = 7) -> bytes:
    """A chained event with these raw payload elements, its ``hash`` the hash of what it
    decodes to (what the archiver re-hashes)."""
    head = (
        element(0x07, "_id", ObjectId().binary),
        element(0x10, "seq", struct.pack("<i", seq)),
        element(0x09, "at", struct.pack("<q", 1_788_091_200_123)),
        element(0x02, "prevHash", string(ZERO_HASH)),
    )
    unhashed = document(*head, *payload)
    digest = event_hash(bson.decode(unhashed, EVENT_CODEC_OPTIONS))
    return document(*head, *payload, element(0x02, "hash", string(digest)))


def double(bits: int) -> bytes:
    return struct.pack("<Q", bits)


def decimal(high: int, low: int = 0) -> bytes:
    return struct.pack("<QQ", low, high)


def regex(pattern: str, flags: str) -> bytes:
    return cstring(pattern) + cstring(flags)


def dbref(*members: tuple[str, bytes]) -> bytes:
    kinds = {"$ref": 0x02, "$id": 0x10, "$db": 0x02}
    return document(*(element(kinds[name], name, value) for name, value in members))


# Stored values a Relaxed Extended JSON line cannot give back bit for bit.
LOSSY: dict[str, bytes] = {
    "NaN payload": element(0x01, "x", double(0x7FF8_0000_0000_0001)),
    "negative NaN": element(0x01, "x", double(0xFFF8_0000_0000_0000)),
    "signalling NaN": element(0x01, "x", double(0x7FF0_0000_0000_0001)),
    "Decimal128 sNaN": element(0x13, "x", decimal(0x7E00_0000_0000_0000)),
    "Decimal128 -NaN": element(0x13, "x", decimal(0xFC00_0000_0000_0000)),
    "Decimal128 NaN payload": element(0x13, "x", decimal(0x7C00_0000_0000_0000, 5)),
    "Decimal128 non-canonical": element(0x13, "x", decimal(0x6C00_0000_0000_0000, 1)),
    "Decimal128 -sNaN": element(0x13, "x", decimal(0xFE00_0000_0000_0000)),
    "Decimal128 infinity with stray bits": element(0x13, "x", decimal(0x7800_0000_0000_0000, 1)),
    "Decimal128 coefficient beyond 34 digits": element(
        0x13, "x", decimal(0x3040_0000_0000_0000 | 0x0001_FFFF_FFFF_FFFF, 2**64 - 1)
    ),
    "symbol": element(0x0E, "x", string("admin")),
    "undefined": element(0x06, "x", b""),
    "DBPointer": element(0x0C, "x", string("users") + ObjectId().binary),
    "duplicate names": element(0x10, "x", struct.pack("<i", 1))
    + element(0x10, "x", struct.pack("<i", 2)),
    "nested duplicate names": element(
        0x03,
        "x",
        document(element(0x08, "a", b"\x01"), element(0x08, "a", b"\x00")),
    ),
    "regex flags out of order": element(0x0B, "x", regex("^adm", "mi")),
    "regex flag unknown": element(0x0B, "x", regex("^adm", "iz")),
    "DBRef field order": element(
        0x03, "x", dbref(("$id", struct.pack("<i", 5)), ("$ref", string("users")))
    ),
    "DBRef $db before $id": element(
        0x03,
        "x",
        dbref(("$ref", string("users")), ("$db", string("app")), ("$id", struct.pack("<i", 5))),
    ),
}
# Stored values a line gives back as stored (the integer width aside).
FAITHFUL: dict[str, bytes] = {
    "the NaN a parser makes": element(0x01, "x", struct.pack("<d", float("nan"))),
    "infinity": element(0x01, "x", struct.pack("<d", float("inf"))),
    "Decimal128 1.5": element(0x13, "x", bson.Decimal128("1.5").bid),
    "Decimal128 NaN": element(0x13, "x", bson.Decimal128("NaN").bid),
    "Decimal128 Infinity": element(0x13, "x", bson.Decimal128("Infinity").bid),
    "Decimal128 -Infinity": element(0x13, "x", bson.Decimal128("-Infinity").bid),
    "Decimal128 of 34 digits": element(0x13, "x", bson.Decimal128("9" * 34 + "E-5").bid),
    "regex flags in order": element(0x0B, "x", regex("^adm", "imsx")),
    "DBRef in order": element(
        0x03, "x", dbref(("$ref", string("users")), ("$id", struct.pack("<i", 5)))
    ),
    "Int64 of a small value": element(0x12, "x", struct.pack("<q", 5)),
    "a string": element(0x02, "x", string("admin")),
}


def carried(line: bytes) -> bytes | None:
    return bson_of_line(json.loads(line))


@pytest.mark.parametrize("name", sorted(LOSSY))
def test_a_value_a_line_cannot_give_back_is_written_as_its_stored_bytes(name: str) -> None:
    raw = event(LOSSY[name])
    [line], checked = archive_lines([raw])
    assert checked == [0]
    assert carried(line) == raw, "the line carries the stored bytes exactly"


@pytest.mark.parametrize("name", sorted(LOSSY))
def test_among_many_events_only_the_lossy_one_becomes_a_bson_line(name: str) -> None:
    raws = [event(FAITHFUL["a string"], seq=i) for i in range(40)]
    raws[17] = event(LOSSY[name], seq=17)
    lines, _ = archive_lines(raws)
    assert [i for i, line in enumerate(lines) if carried(line) is not None] == [17]


@pytest.mark.parametrize("name", sorted(FAITHFUL))
def test_a_value_a_line_gives_back_stays_a_json_line(name: str) -> None:
    raw = event(FAITHFUL[name])
    [line], _ = archive_lines([raw])
    assert carried(line) is None, line
    again = bson.encode(parse_line(line), codec_options=EVENT_CODEC_OPTIONS)
    assert bsonpeek.same_document(again, raw)


@pytest.mark.parametrize("name", sorted(FAITHFUL))
def test_a_value_a_line_gives_back_is_proven_without_reading_back(name: str) -> None:
    """The encoder vouches for these lines without parsing them (reading a line back
    costs ~500 us): a canonical Decimal128 NaN or infinity is written as text that
    decodes to the very bytes stored, like any canonical number."""
    _, checked = archive_lines([event(FAITHFUL[name])])
    assert checked == [], f"{name}: read back although its text gives back its bytes"


# Decimal128 bits: any 16 bytes, the canonical specials, and those with one bit flipped
# (a sign, a payload bit, an sNaN, a stray exponent bit, a coefficient past 34 digits).
_SPECIALS = [bson.Decimal128(text).bid for text in ("NaN", "Infinity", "-Infinity")]
_decimal_bits = st.one_of(
    st.sampled_from(_SPECIALS),
    st.binary(min_size=16, max_size=16),
    st.tuples(st.sampled_from(_SPECIALS), st.integers(0, 127)).map(
        lambda pair: (int.from_bytes(pair[0], "little") ^ (1 << pair[1])).to_bytes(16, "little")
    ),
    st.integers(10**34 - 3, 2**113 - 1).map(lambda c: (c | 0x3040 << 112).to_bytes(16, "little")),
)


def text_gives_back(bits: bytes) -> bool:
    """Whether a Decimal128's text (what a line holds) decodes to these very bits."""
    text = str(bson.Decimal128.from_bid(bits))
    try:
        return bson.Decimal128(text).bid == bits
    except Exception:
        return False


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_decimal_bits, min_size=1, max_size=3), min_size=1, max_size=4))
def test_any_decimal128_bits_are_archived_so_restore_gives_back_the_stored_bytes(
    events: list[list[bytes]],
) -> None:
    """Stored bytes as the encoder meets them (the embedded server is not asked: it may
    normalize on insert). Every line re-hashes and restores to the stored document; a
    line goes unread only when every Decimal128 in it is written as text that decodes to
    its bits, and each such line is proven without reading back."""
    raws = [
        event(*(element(0x13, f"d{j}", bits) for j, bits in enumerate(values)), seq=i)
        for i, values in enumerate(events)
    ]
    lines, checked = archive_lines(raws)
    for line, raw in zip(lines, raws, strict=True):
        back = read_line(line)
        assert event_hash(back.event) == bson.decode(raw, EVENT_CODEC_OPTIONS)["hash"], line
        assert bsonpeek.same_document(back.bson(), raw), line
    exact = [i for i, values in enumerate(events) if all(map(text_gives_back, values))]
    assert [i for i in range(len(raws)) if i not in checked] == exact


# What decoding itself loses: the decoded document encodes to other bytes.
LOST_IN_DECODING = {
    "symbol",
    "undefined",
    "DBPointer",
    "duplicate names",
    "nested duplicate names",
    "regex flags out of order",
    "regex flag unknown",
    "DBRef field order",
    "DBRef $db before $id",
}


@pytest.mark.parametrize("name", sorted(LOSSY))
def test_reads_back_judges_the_stored_bytes_not_a_decode(name: str) -> None:
    """The line of the decoded document re-hashes and, where decoding lost the
    difference, reads back as that decode exactly (how the loss hid from a check on
    decoded values); judged against the stored bytes it does not read back."""
    raw = event(LOSSY[name])
    decoded = bson.decode(raw, EVENT_CODEC_OPTIONS)
    line = relaxed_line(decoded).encode()
    rehash = event_hash(decoded)
    assert not reads_back(line, raw, rehash)
    if name in LOST_IN_DECODING:
        decode_again = bson.encode(decoded, codec_options=EVENT_CODEC_OPTIONS)
        assert decode_again != raw
        assert reads_back(line, decode_again, rehash)


def test_only_the_integer_width_may_differ() -> None:
    as_int64 = event(element(0x12, "n", struct.pack("<q", 5)))
    as_int32 = as_int64.replace(b"\x12n\x00" + struct.pack("<q", 5), b"\x10n\x00\x05\0\0\0")
    fixed = struct.pack("<i", len(as_int32)) + as_int32[4:]
    assert bsonpeek.same_document(fixed, as_int64)
    other = fixed.replace(b"\x10n\x00\x05", b"\x10n\x00\x06")
    assert not bsonpeek.same_document(other, as_int64)
    flipped = fixed.replace(b"\x10n\x00", b"\x10m\x00")
    assert not bsonpeek.same_document(flipped, as_int64), "names matter"
    assert not bsonpeek.same_document(b"\x05\x00\x00\x00", as_int64), "malformed is never same"


def test_a_bson_line_is_standard_base64_of_the_bytes() -> None:
    raw = event(LOSSY["symbol"])
    [line], _ = archive_lines([raw])
    assert line == b'{"bson":"' + base64.b64encode(raw) + b'"}\n'


# -- end to end, for what the embedded server keeps as stored ------------------------------


def raw_events(harness: Harness, payloads: list[bytes], day: dt.date) -> list[tuple[bytes, bytes]]:
    """Chained events continuing the harness's chain, each with one raw payload element
    spliced into a realistic body; inserted as raw BSON. Returns (sent, stored) bytes."""
    start = layout.day_bounds(day)[0]
    first_seq, prev_hash = harness._tail()
    stored: list[tuple[bytes, bytes]] = []
    raw_coll = harness.events.with_options(
        codec_options=EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument)
    )
    for i, payload in enumerate(payloads):
        at = start + dt.timedelta(minutes=i)
        body = {"_id": ObjectId(), **seed.make_body(harness.rng, at, first_seq + i)}
        body["prevHash"] = prev_hash
        elements = bson.encode(body)[4:-1] + payload
        unhashed = document(elements)
        decoded = bson.decode(unhashed, EVENT_CODEC_OPTIONS)
        decoded["hash"] = prev_hash = event_hash(decoded)
        raw = document(elements, element(0x02, "hash", string(prev_hash)))
        raw_coll.insert_one(RawBSONDocument(raw))
        stored.append((raw, raw_coll.find_one({"_id": body["_id"]}).raw))
        harness.seeded.append(decoded)
    return stored


def test_restore_gives_back_the_stored_bytes_of_what_the_server_keeps(
    harness: Harness, capsys
) -> None:
    """Each lossy value inserted as raw BSON; whatever the embedded server stores as sent
    (it normalizes some: those are covered above, at the encoder) is archived as a bson
    line, verifies --deep, and restores to the very bytes that were in hot."""
    day = due_day(2)
    names = sorted(LOSSY)
    pairs = raw_events(harness, [LOSSY[name] for name in names], day)
    stored = [back for _, back in pairs]
    kept = [name for name, (sent, back) in zip(names, pairs, strict=True) if back == sent]
    assert kept, "the server keeps some of these as stored, or this test proves nothing"

    assert harness.run(day).success
    assert main(["verify", "--deep", "--from", str(day), "--to", str(day)]) == 0, (
        capsys.readouterr().out
    )
    key = layout.jsonl_key(harness.settings.cold_prefix, layout.format_day(day), 1)
    lines = gzip.decompress(harness.get(key)).splitlines()
    by_bytes = {carried(line + b"\n") for line in lines}
    for name, raw in zip(names, stored, strict=True):
        if name in kept:
            assert raw in by_bytes, f"{name}: written as the server's stored bytes"

    assert main(["restore", "--day", str(day)]) == 0
    restored = harness.db["auditevents_restored"].with_options(
        codec_options=EVENT_CODEC_OPTIONS.with_options(document_class=RawBSONDocument)
    )
    for name, raw in zip(names, stored, strict=True):
        _id = bson.decode(raw)["_id"]
        back = restored.find_one({"_id": _id}).raw
        if name in kept:
            assert back == raw, f"{name}: restore gives back exactly what was in hot"

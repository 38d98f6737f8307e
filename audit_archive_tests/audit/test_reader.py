"""The checked-part reader: one answer to "is this part what the archive wrote?" for
every reader, as typed problems, on both line forms of SPEC 3."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterator

import pytest

from audit_archive.audit.reader import CheckedPart, Defect, Verdict, open_part
from audit_archive.format.jsonl import LineError, read_line, relaxed_line
from audit_archive.format.manifest import manifest_bytes, sign_manifest
from audit_archive.stores.clients import Stores, open_stores
from audit_archive_tests.support.harness import KEY_A, KEY_B, Harness, same_value
from audit_archive_tests.support.parts import chain_events, line_of, reads_back, write_part
from audit_archive_tests.support.samples import EVERY_BSON_TYPE, WRAPPER_LOOKALIKES

DAY = dt.date(2026, 3, 4)


@pytest.fixture
def stores(harness: Harness) -> Iterator[Stores]:
    s = open_stores(harness.settings)
    yield s
    s.close()


def events_with_both_line_forms() -> list[dict]:
    payloads = [{}, EVERY_BSON_TYPE, *WRAPPER_LOOKALIKES, {}]
    return chain_events(DAY, len(payloads) + 2, first_seq=2**31 - 3, payloads=payloads)


def read_all(part: CheckedPart) -> list:
    return list(part.lines())


def test_a_part_with_both_line_forms_reads_back_every_stored_document(
    harness: Harness, stores: Stores
) -> None:
    docs = events_with_both_line_forms()
    assert sum(not reads_back(d) for d in docs) >= 4, "bson lines"
    record = write_part(harness, DAY, 1, docs)

    part = open_part(stores.cold, record, [KEY_A])
    lines = read_all(part)

    assert part.ok and part.finished and part.hashes_checked, part.problems
    assert part.verdict is None
    assert [line.index for line in lines] == list(range(len(docs)))
    for line, doc in zip(lines, docs, strict=True):
        assert same_value(line.event, doc), doc["seq"]
        assert line.rehashes
        assert (line.stored_bson is not None) == (not reads_back(doc))
    decoded_all = [line.event for line in lines]
    assert decoded_all[2]["filter"] == {"email": {"$regex": "@example\\.com$", "$options": "i"}}
    assert decoded_all[3]["filter"] == {"name": {"$regex": "^adm"}}
    assert decoded_all[4]["when"] == {"$date": "yesterday"}
    assert part.events_read == len(docs) and part.bytes_read == record["bytesCompressed"]


def test_read_line_decodes_both_forms_and_rejects_anything_else() -> None:
    doc = chain_events(DAY, 1, payloads=[WRAPPER_LOOKALIKES[0]])[0]
    bson_form = read_line(line_of(doc).rstrip(b"\n"))
    assert bson_form.stored_bson is not None and bson_form.event == doc and bson_form.rehashes
    plain = read_line(relaxed_line(chain_events(DAY, 1)[0]))
    assert plain.stored_bson is None and plain.rehashes
    for garbage in (b"", b"5", b"[1]", b"{not json", b'{"bson": "%%%"}', b'{"bson": "AAAA"}'):
        with pytest.raises(LineError):
            read_line(garbage)


def put(harness: Harness, key: str, body: bytes) -> None:
    harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=body)


def resign(harness: Harness, record: dict, change) -> dict:
    """Change the manifest and sign it again with KEY_A (a key holder's forgery)."""
    manifest = json.loads(harness.get(record["manifestKey"]))
    change(manifest)
    raw = manifest_bytes(sign_manifest(manifest, KEY_A))
    put(harness, record["manifestKey"], raw)
    return {**record, "manifestSha256": hashlib.sha256(raw).hexdigest()}


def defects(part: CheckedPart) -> set[Defect]:
    return {p.defect for p in part.problems}


def test_each_defect_is_typed(harness: Harness, stores: Stores) -> None:
    docs = chain_events(DAY, 6, first_seq=100)
    record = write_part(harness, DAY, 1, docs)
    keys = [KEY_A]

    # A key id none of the known keys has: unverifiable, not modified; nothing read.
    part = open_part(stores.cold, record, [KEY_B])
    assert defects(part) == {Defect.SIGNATURE_UNVERIFIABLE}
    assert part.verdict is Verdict.UNVERIFIABLE and read_all(part) == []
    assert "unverifiable, not tampered" in part.describe()

    # The record names another manifest (sha256), or other counts.
    part = open_part(stores.cold, {**record, "manifestSha256": "0" * 64}, keys)
    assert defects(part) == {Defect.MANIFEST_NOT_RECORDED}
    part = open_part(stores.cold, {**record, "eventCount": 7, "part": 2}, keys)
    assert defects(part) == {Defect.RECORD_DISAGREES} and len(part.problems) == 2

    # Missing objects.
    part = open_part(stores.cold, {**record, "manifestKey": "audit/day=x/none.json"}, keys)
    assert defects(part) == {Defect.MANIFEST_MISSING} and part.verdict is Verdict.MISSING
    moved = resign(harness, record, lambda m: m["jsonl"].update(key="audit/elsewhere.jsonl.gz"))
    part = open_part(stores.cold, moved, keys)
    assert part.ok and read_all(part) == [] and defects(part) == {Defect.EVENTS_MISSING}


def test_content_defects_are_found_once_the_stream_ends(harness: Harness, stores: Stores) -> None:
    docs = chain_events(DAY, 6, first_seq=100)
    record = write_part(harness, DAY, 1, docs)
    signed = harness.get(record["manifestKey"])
    lines = gzip.decompress(harness.get(record["jsonlKey"])).splitlines(keepends=True)

    # An event changed (hash kept), object and manifest re-signed consistently: only
    # the re-hash notices. Its seq is named.
    forged = json.loads(lines[3])
    forged["action"] = "role.grant"
    body = gzip.compress(b"".join([*lines[:3], (json.dumps(forged) + "\n").encode(), *lines[4:]]))
    put(harness, record["jsonlKey"], body)
    sha = hashlib.sha256(body).hexdigest()
    resigned = resign(harness, record, lambda m: m["jsonl"].update(sha256=sha, bytes=len(body)))
    part = open_part(stores.cold, {**resigned, "jsonlSha256": sha}, [KEY_A])
    assert len(read_all(part)) == 6
    assert defects(part) == {Defect.EVENT_HASH}
    assert part.problems[0].seqs == (docs[3]["seq"],) and part.verdict is Verdict.MODIFIED

    # The object replaced: sha256 and size differ from the signed manifest.
    put(harness, record["manifestKey"], signed)
    put(harness, record["jsonlKey"], gzip.compress(b"".join(lines[:5])))
    part = open_part(stores.cold, record, [KEY_A])
    read_all(part)
    assert {Defect.EVENTS_SHA256, Defect.EVENTS_SIZE, Defect.EVENT_COUNT} <= defects(part)
    assert Defect.MERKLE_ROOT in defects(part), "the root of 5 leaves is not the signed one"

    # Not gzip at all.
    put(harness, record["jsonlKey"], b"plain text")
    part = open_part(stores.cold, record, [KEY_A])
    assert read_all(part) == [] and defects(part) == {Defect.EVENTS_UNREADABLE}

    # A manifest that is not JSON.
    put(harness, record["manifestKey"], b"{")
    part = open_part(stores.cold, record, [KEY_A])
    assert defects(part) == {Defect.MANIFEST_UNREADABLE}


def test_a_changed_manifest_is_modified(harness: Harness, stores: Stores) -> None:
    record = write_part(harness, DAY, 1, chain_events(DAY, 3))
    manifest = json.loads(harness.get(record["manifestKey"]))
    manifest["eventCount"] = 2
    put(harness, record["manifestKey"], manifest_bytes(manifest))
    part = open_part(stores.cold, record, [KEY_A])
    assert Defect.SIGNATURE_MODIFIED in defects(part) and part.verdict is Verdict.MODIFIED


def test_a_selective_read_checks_the_object_but_does_not_claim_every_hash(
    harness: Harness, stores: Stores
) -> None:
    docs = chain_events(DAY, 10)
    record = write_part(harness, DAY, 1, docs)
    wanted = str(docs[4]["seq"]).encode()
    part = open_part(stores.cold, record, [KEY_A])
    picked = list(part.lines(lambda raw: b'"seq":' + wanted + b"," in raw))
    assert [line.seq for line in picked] == [docs[4]["seq"]]
    assert part.ok and part.finished and not part.hashes_checked
    assert part.events_read == 10

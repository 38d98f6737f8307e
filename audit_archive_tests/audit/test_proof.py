"""Inclusion proofs: `prove` writes one event with its RFC 6962 audit path and signed
manifest; `check-proof` accepts exactly the untouched proof, offline."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import gzip
import json
import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_archive.audit.prove import check_proof
from audit_archive.cli import main
from audit_archive.format import layout
from audit_archive.format.jsonl import parse_line, relaxed_line
from audit_archive.format.manifest import (
    PartSummary,
    SignatureStatus,
    build_manifest,
    sign_manifest,
)
from audit_archive.format.merkle import merkle_root
from audit_archive.format.proof import build_proof
from audit_archive_dev import seed
from audit_archive_tests.support.harness import KEY_A, KEY_B, Harness, due_day
from audit_archive_tests.support.parts import chain_events, line_of, write_part

DAY = dt.date(2026, 8, 30)
SIZES = (1, 2, 3, 5, 8, 1000)


@functools.cache
def make_part(n: int, *, first_seq: int = 1000) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``n`` chained events of DAY and their part's manifest, signed with KEY_A (cached:
    callers never change them, proofs and their changes are copies)."""
    rng = random.Random(n)
    events = list(
        seed.chain(seed.day_times(DAY, n, rng), first_seq=first_seq, prev_hash="ab" * 32, rng=rng)
    )
    hashes = [e["hash"] for e in events]
    summary = PartSummary(
        day=layout.format_day(DAY),
        part=1,
        event_count=n,
        start_seq=events[0]["seq"],
        end_seq=events[-1]["seq"],
        first_prev_hash=events[0]["prevHash"],
        last_hash=events[-1]["hash"],
        chain_edges=[],
        merkle_root=merkle_root(hashes),
        jsonl_key=layout.jsonl_key("audit", DAY, 1),
        jsonl_sha256="0" * 64,
        jsonl_bytes=1,
        jsonl_bytes_uncompressed=1,
    )
    return events, sign_manifest(build_manifest(summary), KEY_A)


def proof_for(events: list[dict[str, Any]], manifest: dict[str, Any], index: int) -> dict:
    line = relaxed_line(events[index])
    return build_proof([e["hash"] for e in events], index, line, manifest, "audit/x")


def positions(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1})


def with_event(proof: dict, change: Callable[[dict], None]) -> dict:
    event = parse_line(proof["eventLine"])
    change(event)
    return {**proof, "eventLine": relaxed_line(event).rstrip("\n")}


EVENT_CHANGES: dict[str, Callable[[dict], None]] = {
    "actor": lambda e: e["actor"].update(id="mallory"),
    "action": lambda e: e.update(action="role.grant.forged"),
    "at": lambda e: e.update(at=e["at"] + dt.timedelta(milliseconds=1)),
    "seq": lambda e: e.update(seq=e["seq"] + 1),
    "prevHash": lambda e: e.update(prevHash="f" * 64),
    "hash": lambda e: e.update(hash="e" * 64),
    "nested payload": lambda e: e["meta"]["geo"].update(country="XX"),
    "added field": lambda e: e.update(extra=1),
    "removed field": lambda e: e.pop("source"),
}


def path_changes(proof: dict) -> dict[str, dict]:
    path = proof["auditPath"]
    out = {
        "path longer": {**proof, "auditPath": [*path, "00" * 32]},
        "leafIndex + 1": {**proof, "leafIndex": proof["leafIndex"] + 1},
        "leafIndex - 1": {**proof, "leafIndex": proof["leafIndex"] - 1},
        "treeSize + 1": {**proof, "treeSize": proof["treeSize"] + 1},
    }
    for i in range(len(path)):
        flipped = path[i][:-1] + ("0" if path[i][-1] != "0" else "1")
        out[f"path[{i}] changed"] = {**proof, "auditPath": [*path[:i], flipped, *path[i + 1 :]]}
    if path:
        out["path shorter"] = {**proof, "auditPath": path[:-1]}
    if len(path) > 1:
        out["path reversed"] = {**proof, "auditPath": path[::-1]}
    return out


MANIFEST_CHANGES: dict[str, Callable[[dict], None]] = {
    "merkleRoot": lambda m: m.update(merkleRoot="cd" * 32),
    "eventCount": lambda m: m.update(eventCount=m["eventCount"] + 1),
    "day": lambda m: m.update(day="2026-08-31"),
    "part": lambda m: m.update(part=2),
    "startSeq": lambda m: m.update(startSeq=m["startSeq"] - 1),
    "chainEdges": lambda m: m.update(chainEdges=[{"seq": 1, "prevHash": "0", "hash": "1"}]),
    "jsonl.sha256": lambda m: m["jsonl"].update(sha256="1" * 64),
    "signature": lambda m: m.update(signature="0" * 64),
    "keyId": lambda m: m["signing"].update(keyId="0" * 16),
}


@pytest.mark.parametrize("n", SIZES)
def test_a_proof_for_the_first_middle_and_last_event_is_accepted(n: int) -> None:
    events, manifest = make_part(n)
    for index in positions(n):
        result = check_proof(proof_for(events, manifest, index), [KEY_A])
        assert result.ok, (index, result.problems)
        assert result.seq == events[index]["seq"] and result.status is SignatureStatus.VALID


@pytest.mark.parametrize("n", SIZES)
def test_a_proof_is_rejected_after_any_change_to_the_event(n: int) -> None:
    events, manifest = make_part(n)
    for index in positions(n):
        proof = proof_for(events, manifest, index)
        for name, change in EVENT_CHANGES.items():
            result = check_proof(with_event(proof, change), [KEY_A])
            assert not result.ok, f"{name} at index {index} of {n} was accepted"


@pytest.mark.parametrize("n", SIZES)
def test_a_proof_is_rejected_after_any_change_to_the_path(n: int) -> None:
    events, manifest = make_part(n)
    for index in positions(n):
        for name, changed in path_changes(proof_for(events, manifest, index)).items():
            assert not check_proof(changed, [KEY_A]).ok, f"{name} at index {index} of {n}"


@pytest.mark.parametrize("n", SIZES)
def test_a_proof_is_rejected_after_any_change_to_the_manifest(n: int) -> None:
    events, manifest = make_part(n)
    for index in positions(n):
        proof = proof_for(events, manifest, index)
        for name, change in MANIFEST_CHANGES.items():
            changed = copy.deepcopy(proof)
            change(changed["manifest"])
            result = check_proof(changed, [KEY_A])
            assert not result.ok, f"{name} at index {index} of {n} was accepted"


def test_another_events_path_does_not_prove_an_event() -> None:
    events, manifest = make_part(8)
    proof = proof_for(events, manifest, 3)
    other = proof_for(events, manifest, 4)
    assert not check_proof({**proof, "auditPath": other["auditPath"]}, [KEY_A]).ok
    assert not check_proof({**proof, "eventLine": other["eventLine"]}, [KEY_A]).ok


def test_a_proof_signed_with_an_unknown_key_is_unverifiable_not_valid() -> None:
    events, manifest = make_part(5)
    result = check_proof(proof_for(events, manifest, 2), [KEY_B])
    assert not result.ok and result.status is SignatureStatus.UNVERIFIABLE
    assert "none of the known keys has" in result.problems[0]
    assert check_proof(proof_for(events, manifest, 2), [KEY_B, KEY_A]).ok, "a retired key works"


def test_the_proof_does_not_cover_id_which_the_hash_scheme_excludes() -> None:
    # Documented limit: nothing signed binds _id, so a proof cannot either.
    events, manifest = make_part(3)
    proof = proof_for(events, manifest, 1)
    changed = with_event(proof, lambda e: e.update(_id="someone-else"))
    assert check_proof(changed, [KEY_A]).ok


def test_garbage_is_rejected_without_raising() -> None:
    events, manifest = make_part(2)
    good = proof_for(events, manifest, 0)
    for bad in (
        None,
        [],
        "proof",
        {},
        {**good, "format": "other"},
        {**good, "manifest": None},
        {**good, "eventLine": "{not json"},
        {**good, "eventLine": 5},
        {**good, "leafIndex": "0"},
        {**good, "auditPath": ["zz"]},
        {**good, "leafIndex": -1},
        {**good, "leafIndex": 2},
    ):
        assert not check_proof(bad, [KEY_A]).ok, bad


def test_the_proof_file_names_its_parts() -> None:
    events, manifest = make_part(5)
    proof = proof_for(events, manifest, 4)
    assert list(proof) == [
        "format",
        "version",
        "hashScheme",
        "eventLine",
        "leafIndex",
        "treeSize",
        "auditPath",
        "manifestKey",
        "manifest",
    ]
    assert proof["eventLine"] == relaxed_line(events[4]).rstrip("\n")
    assert proof["leafIndex"] == 4 and proof["treeSize"] == 5 and len(proof["auditPath"]) == 1


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_leaf_of_any_tree_size_has_a_valid_proof(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 70), label="n")
    index = data.draw(st.integers(0, n - 1), label="index")
    events, manifest = make_part(n)
    assert check_proof(proof_for(events, manifest, index), [KEY_A]).ok


def test_check_proof_exit_codes_need_no_servers(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("AUDIT_SIGNING_KEYS_PREVIOUS", raising=False)
    monkeypatch.setenv("AUDIT_SIGNING_KEY", KEY_A)
    events, manifest = make_part(5)
    good, garbage = tmp_path / "good.json", tmp_path / "garbage.json"
    good.write_text(json.dumps(proof_for(events, manifest, 2)))
    garbage.write_text("not json at all")

    assert main(["check-proof", str(good)]) == 0
    assert main(["check-proof", str(garbage)]) == 1
    assert "INVALID proof: not a proof" in capsys.readouterr().err
    assert main(["check-proof", str(tmp_path / "missing.json")]) == 2
    monkeypatch.setenv("AUDIT_SIGNING_KEY", "")
    assert main(["check-proof", str(good)]) == 2
    assert "no key" in capsys.readouterr().err


# -- end to end: the CLI against the real servers ------------------------------------------


def test_prove_and_check_proof_through_the_cli(
    harness: Harness, tmp_path, capsys, monkeypatch
) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 40, due_day(1): 5})
    assert harness.run(day).success
    target = sorted((e for e in seeded if e["at"].date() == day), key=lambda e: e["seq"])[17]
    path = tmp_path / "proof.json"

    assert main(["prove", "--seq", str(target["seq"]), "--out", str(path)]) == 0
    document = json.loads(path.read_text())
    assert document["leafIndex"] == 17 and document["treeSize"] == 40
    assert document["manifest"] == harness.manifest(day)
    assert document["manifestKey"] == f"audit/day={day}/part-0001.manifest.json"
    assert main(["check-proof", str(path)]) == 0
    assert f"valid: seq {target['seq']} in {day} part 1" in capsys.readouterr().out

    # Offline: nothing but the key; MongoDB and S3 are not contacted.
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unreachable")
    monkeypatch.setenv("AUDIT_COLD_ENDPOINT", "http://127.0.0.1:1")
    assert main(["check-proof", str(path)]) == 0
    key_file = tmp_path / "key"
    key_file.write_text(KEY_A + "\n")
    assert main(["check-proof", str(path), "--key-file", str(key_file)]) == 0
    key_file.write_text(KEY_B + "\n")
    assert main(["check-proof", str(path), "--key-file", str(key_file)]) == 1

    forged = dict(document, eventLine=document["eventLine"].replace('"action":"', '"action":"x'))
    path.write_text(json.dumps(forged))
    assert main(["check-proof", str(path)]) == 1
    assert "does not re-hash" in capsys.readouterr().err


def test_prove_finds_an_event_whose_part_overlaps_another_days_seq_range(
    harness: Harness, tmp_path
) -> None:
    day, other = due_day(4), due_day(3)
    start, other_start = layout.day_bounds(day)[0], layout.day_bounds(other)[0]
    docs = harness.append(
        [start, start + dt.timedelta(hours=1), other_start, start + dt.timedelta(hours=2)],
        gap_rate=0,
    )
    assert harness.run(day).success and harness.run(other).success
    path = tmp_path / "p.json"
    assert main(["prove", "--seq", str(docs[2]["seq"]), "--out", str(path)]) == 0
    assert json.loads(path.read_text())["manifest"]["day"] == layout.format_day(other)
    assert main(["check-proof", str(path)]) == 0


def test_prove_exits_1_for_an_event_that_is_not_archived(harness: Harness, capsys) -> None:
    day = due_day(2)
    harness.seed({day: 5, due_day(1): 5})
    assert harness.run(day).success
    hot_seq = harness.events.find_one({}, sort=[("seq", 1)])["seq"]
    assert main(["prove", "--seq", str(hot_seq)]) == 1
    assert "still in hot storage" in capsys.readouterr().err
    assert main(["prove", "--seq", "999999"]) == 1


def test_prove_refuses_a_part_whose_object_was_altered(harness: Harness, capsys) -> None:
    day = due_day(2)
    seeded = harness.seed({day: 6})
    assert harness.run(day).success
    key = f"audit/day={day}/part-0001.jsonl.gz"
    text = gzip.decompress(harness.get(key)).decode().replace('"action":"', '"action":"x', 1)
    harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=gzip.compress(text.encode()))
    assert main(["prove", "--seq", str(seeded[3]["seq"])]) == 1
    assert "sha256 differs" in capsys.readouterr().err


# -- prove: overlapping parts and bad input ------------------------------------------------


def interleaved_parts(harness: Harness) -> tuple[list[dict], list[dict]]:
    """Day X holds seqs 10, 11, 20, 21; day Y (later) holds 12-19, inside X's range. X's
    manifest is signed with KEY_B, a key the environment does not hold."""
    day_x, day_y = due_day(5), due_day(4)
    x_at, y_at = layout.day_bounds(day_x)[0], layout.day_bounds(day_y)[0]
    ats = [x_at + dt.timedelta(minutes=i) for i in range(2)]
    ats += [y_at + dt.timedelta(minutes=i) for i in range(8)]
    ats += [x_at + dt.timedelta(hours=5, minutes=i) for i in range(2)]
    docs = list(seed.chain(ats, first_seq=10, rng=random.Random(3), gap_rate=0))
    x = [d for d in docs if d["at"].date() == day_x]
    y = [d for d in docs if d["at"].date() == day_y]
    write_part(harness, day_x, 1, x, key=KEY_B)
    write_part(harness, day_y, 1, y)
    return x, y


def test_an_unverifiable_part_does_not_block_a_valid_part_holding_the_seq(
    harness: Harness, tmp_path, capsys
) -> None:
    x, y = interleaved_parts(harness)
    path = tmp_path / "p.json"

    assert main(["prove", "--seq", str(y[3]["seq"]), "--out", str(path)]) == 0
    assert json.loads(path.read_text())["manifest"]["day"] == str(due_day(4))
    assert main(["check-proof", str(path)]) == 0

    capsys.readouterr()
    assert main(["prove", "--seq", str(x[0]["seq"])]) == 1, "only the unverifiable part has it"
    err = capsys.readouterr().err
    assert f"seq {x[0]['seq']} is in no part that checks out" in err
    assert f"{due_day(5)} part 1" in err and "unverifiable, not tampered" in err


@pytest.mark.parametrize("seq", [str(2**63), str(-(2**63) - 1), "1" + "0" * 30])
def test_prove_refuses_a_seq_beyond_8_bytes(seq: str, capsys) -> None:
    assert main(["prove", "--seq", seq]) == 2
    assert "does not fit in 8 bytes" in capsys.readouterr().err


def test_prove_refuses_an_unwritable_out_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    # No servers needed: the output is checked first.
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unreachable")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        cases = {
            str(tmp_path / "missing" / "p.json"): f"folder {tmp_path / 'missing'} does not exist",
            str(tmp_path): "it is a directory",
        }
        if os.geteuid() != 0:  # root writes anywhere
            cases[str(locked / "p.json")] = "permission denied"
        for out, reason in cases.items():
            assert main(["prove", "--seq", "1", "--out", out]) == 2, out
            err = capsys.readouterr().err
            assert f"cannot write --out {out}: {reason}" in err, err
            assert "Traceback" not in err
    finally:
        locked.chmod(0o700)


def test_check_proof_with_a_missing_key_file_is_a_usage_error(tmp_path, capsys) -> None:
    events, manifest = make_part(3)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(proof_for(events, manifest, 0)))
    missing = tmp_path / "no-such-key"
    assert main(["check-proof", str(path), "--key-file", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--key-file" in err and str(missing) in err and "Traceback" not in err


def test_a_bson_line_proof_is_checked_like_any_other() -> None:
    docs = chain_events(DAY, 4, payloads=[{}, {"q": {"$regex": "^adm", "$options": "i"}}])
    line = line_of(docs[1]).decode().rstrip("\n")
    assert line.startswith('{"bson":')
    hashes = [d["hash"] for d in docs]
    summary = PartSummary(
        day=layout.format_day(DAY), part=1, event_count=4, start_seq=docs[0]["seq"],
        end_seq=docs[-1]["seq"], first_prev_hash=docs[0]["prevHash"], last_hash=docs[-1]["hash"],
        chain_edges=[], merkle_root=merkle_root(hashes), jsonl_key="k", jsonl_sha256="0" * 64,
        jsonl_bytes=1, jsonl_bytes_uncompressed=1,
    )  # fmt: skip
    manifest = sign_manifest(build_manifest(summary), KEY_A)
    proof = build_proof(hashes, 1, line, manifest)

    result = check_proof(proof, [KEY_A])
    assert result.ok and result.seq == docs[1]["seq"], result.problems

    changed = parse_line(line)
    changed["q"]["$options"] = ""
    forged = {**proof, "eventLine": line_of(changed).decode().rstrip("\n")}
    assert "does not re-hash" in " ".join(check_proof(forged, [KEY_A]).problems)

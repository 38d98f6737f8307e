"""Manifests: fields in the SPEC's order, HMAC-SHA-256 over canonical JSON, key ids."""

from __future__ import annotations

import hashlib
import hmac
import json

from audit_archive.format.canonical import canonical_json
from audit_archive.format.manifest import (
    PartSummary,
    SignatureStatus,
    build_manifest,
    key_id,
    manifest_bytes,
    sign_manifest,
    verify_signature,
)

KEY = "k" * 40
OLD = "o" * 40


def summary(**changes) -> PartSummary:
    base = dict(
        day="2026-08-30",
        part=1,
        event_count=2,
        start_seq=10,
        end_seq=11,
        first_prev_hash="a" * 64,
        last_hash="b" * 64,
        chain_edges=[{"seq": 10, "prevHash": "a" * 64, "hash": "c" * 64}],
        merkle_root="d" * 64,
        jsonl_key="audit/day=2026-08-30/part-0001.jsonl.gz",
        jsonl_sha256="e" * 64,
        jsonl_bytes=100,
        jsonl_bytes_uncompressed=400,
    )
    base.update(changes)
    return PartSummary(**base)


def test_key_id_is_the_first_16_hex_of_sha256_of_the_key() -> None:
    assert key_id(KEY) == hashlib.sha256(KEY.encode()).hexdigest()[:16]


def test_signature_is_hmac_over_the_canonical_manifest_without_signature() -> None:
    signed = sign_manifest(build_manifest(summary()), KEY)
    assert signed["signing"] == {"alg": "HMAC-SHA256", "keyId": key_id(KEY)}
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    expected = hmac.new(KEY.encode(), canonical_json(unsigned), hashlib.sha256).hexdigest()
    assert signed["signature"] == expected
    assert verify_signature(signed, [KEY]) is SignatureStatus.VALID


def test_pretty_printing_does_not_matter_to_the_signature() -> None:
    signed = sign_manifest(build_manifest(summary()), KEY)
    reread = json.loads(manifest_bytes(signed))
    assert verify_signature(reread, [KEY]) is SignatureStatus.VALID
    assert manifest_bytes(signed) == manifest_bytes(json.loads(manifest_bytes(signed)))


def test_any_change_is_modified_and_an_unknown_key_is_unverifiable() -> None:
    signed = sign_manifest(build_manifest(summary()), KEY)
    for field, value in [("eventCount", 3), ("merkleRoot", "0" * 64), ("day", "2026-08-31")]:
        assert verify_signature({**signed, field: value}, [KEY]) is SignatureStatus.MODIFIED
    relabelled = {**signed, "signing": {"alg": "HMAC-SHA256", "keyId": key_id(OLD)}}
    assert verify_signature(relabelled, [KEY, OLD]) is SignatureStatus.MODIFIED
    assert verify_signature(signed, [OLD]) is SignatureStatus.UNVERIFIABLE
    assert (
        verify_signature(sign_manifest(build_manifest(summary()), OLD), [KEY, OLD])
        is SignatureStatus.VALID
    )


def test_an_empty_part_has_nulls_and_no_edges() -> None:
    empty = build_manifest(
        summary(
            event_count=0,
            start_seq=None,
            end_seq=None,
            first_prev_hash=None,
            last_hash=None,
            chain_edges=[],
            merkle_root=None,
            jsonl_key=None,
            jsonl_sha256=None,
            jsonl_bytes=0,
            jsonl_bytes_uncompressed=0,
        )
    )
    assert empty["jsonl"] is None and empty["merkleRoot"] is None and empty["chainEdges"] == []
    assert empty["hashScheme"] == "sha256-canonical-json-v1" and empty["version"] == 1


def test_the_same_summary_gives_the_same_bytes() -> None:
    assert manifest_bytes(sign_manifest(build_manifest(summary()), KEY)) == manifest_bytes(
        sign_manifest(build_manifest(summary()), KEY)
    )

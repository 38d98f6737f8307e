"""Find one archived event by ``seq`` and build its inclusion proof (the I/O half of
``audit-archive prove``; the proof format and its checks are in proof.py).

The part is found through the batch records' seq ranges (ranges of parts can
overlap when days interleave, so every candidate is read until the event turns up).
A proof is only issued for a part that checks out: manifest signature valid, object
sha256 and size as signed, and the Merkle root recomputed from the object equal to
the signed one. Memory: the part's event hashes (about 100 bytes per event).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from audit_archive.audit.reader import PartReadError, PartStream, load_manifest
from audit_archive.errors import AuditArchiveError
from audit_archive.format import proof as proof_doc
from audit_archive.format.canonical import event_hash
from audit_archive.format.jsonl import parse_line
from audit_archive.format.manifest import SignatureStatus
from audit_archive.format.merkle import merkle_root
from audit_archive.stores.clients import Stores


class ProveError(AuditArchiveError):
    """No proof can be issued: the event is not archived, or its part does not check out."""


@dataclass(frozen=True)
class Located:
    record: dict[str, Any]
    manifest: dict[str, Any]
    hashes: list[str]
    index: int
    line: str


def candidate_records(stores: Stores, seq: int) -> list[dict[str, Any]]:
    """Recorded parts whose seq range contains ``seq``, oldest day first."""
    flt = {"startSeq": {"$lte": seq}, "endSeq": {"$gte": seq}}
    return list(stores.hot.batches.find(flt, {"_id": 0}).sort([("day", 1), ("part", 1)]))


def _locate_in(stores: Stores, record: dict[str, Any], seq: int) -> Located | None:
    keys = stores.settings.verification_keys
    loaded = load_manifest(stores.cold, record["manifestKey"], keys)
    where = f"{record['day']} part {record['part']}"
    if loaded.status is not SignatureStatus.VALID:
        raise ProveError(f"{where}: manifest signature is {loaded.status.value}; no proof issued")
    manifest = loaded.manifest
    jsonl = manifest.get("jsonl") or {}
    stream = PartStream(stores.cold, jsonl.get("key") or record["jsonlKey"])
    hashes: list[str] = []
    found: tuple[int, str] | None = None
    for raw in stream.raw_lines():
        # Plain JSON is enough for seq and hash (both plain values in Relaxed
        # Extended JSON); only the proven event is decoded with BSON types below.
        doc = json.loads(raw)
        if not isinstance(doc.get("hash"), str):
            raise ProveError(f"{where}: line {len(hashes) + 1} has no hash; no proof issued")
        hashes.append(doc["hash"])
        if doc.get("seq") == seq:
            found = (len(hashes) - 1, raw.decode("utf-8"))
    try:
        stream.check(jsonl.get("sha256"), jsonl.get("bytes"))
    except PartReadError as e:
        raise ProveError(f"{where}: {e}; no proof issued") from None
    if found is None:
        return None
    try:
        root = merkle_root(hashes)
    except ValueError:
        root = None
    if root != manifest.get("merkleRoot"):
        raise ProveError(f"{where}: Merkle root of the object differs from the manifest's")
    index, line = found
    event = parse_line(line)
    if event_hash(event) != event.get("hash"):
        raise ProveError(f"{where}: seq {seq} does not re-hash; no proof issued")
    return Located(record, manifest, hashes, index, line)


def prove_seq(stores: Stores, seq: int) -> dict[str, Any]:
    """The proof document for the archived event ``seq``; ProveError if there is none."""
    for record in candidate_records(stores, seq):
        if not record.get("eventCount"):
            continue
        located = _locate_in(stores, record, seq)
        if located is not None:
            return proof_doc.build_proof(
                located.hashes,
                located.index,
                located.line,
                located.manifest,
                record["manifestKey"],
            )
    in_hot = stores.hot.events.count_documents({"seq": seq}, limit=1)
    hint = " (it is still in hot storage, not yet archived)" if in_hot else ""
    raise ProveError(f"seq {seq} is not in any archived part{hint}")

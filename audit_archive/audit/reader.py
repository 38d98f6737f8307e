"""Reading a part back from cold storage, with every check the format allows.

Why one module: "is this part what the archive wrote?" must get the same answer
whichever command asks (verify, restore, prove, search, check-proof, and the archiver
finishing an interrupted purge). Before this module each reader had its own copy of
the checks, and they drifted: one trusted an unverifiable manifest, one did not read
``{"bson": ...}`` lines, one compared seqs with ``type(x) is int``. Here:

- :func:`open_part` loads a part's manifest and checks it: the signature (with a key
  we hold: ``valid``; with a key id we do not hold: ``unverifiable``, which is not
  ``modified``), its sha256 against the batch record, and that it is the manifest of
  the recorded day and part with the recorded counts.
- :meth:`CheckedPart.lines` streams the events object (bounded memory: one chunk,
  one line), decodes every line with :func:`read_line` (either line form of SPEC 3),
  re-hashes every event and rebuilds the Merkle root; once the stream ends it checks
  the object's sha256 and size, the line count and the root against the manifest.
- Every defect is a :class:`Problem` with a :class:`Defect` kind: callers decide on the
  kind (``Problem.verdict``), never on message text, and print the message.

Callers that act on a part irreversibly (restore writes, prove issues a proof) must
read :meth:`CheckedPart.lines` to the end and look at :attr:`CheckedPart.ok` first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zlib import error as ZlibError

from botocore.exceptions import ClientError

from audit_archive.errors import format_seq_ranges
from audit_archive.format.canonical import (
    ZERO_HASH,
)
from audit_archive.format.chain import HEX64
from audit_archive.format.jsonl import EventLine, LineError, read_line
from audit_archive.format.malformed import is_integer_seq
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive.format.merkle import MerkleBuilder
from audit_archive.stores.cold import is_not_found
from audit_archive.stores.partstream import PartStream

if TYPE_CHECKING:
    from audit_archive.stores.cold import ColdStore


class Verdict(StrEnum):
    """What a defect means for the part as evidence."""

    MODIFIED = "modified"  # proven different from what the archive wrote
    UNVERIFIABLE = "unverifiable"  # signed with a key id none of the known keys has
    MISSING = "missing"  # an object the record names is not in the bucket


class Defect(StrEnum):
    MANIFEST_MISSING = "manifest-missing"
    MANIFEST_UNREADABLE = "manifest-unreadable"  # not a JSON object
    SIGNATURE_MODIFIED = "signature-modified"  # a known key, but the content changed
    SIGNATURE_UNVERIFIABLE = "signature-unverifiable"  # a key id we do not hold
    MANIFEST_NOT_RECORDED = "manifest-not-recorded"  # sha256 differs from the record's
    RECORD_DISAGREES = "record-disagrees"  # day, part, eventCount or jsonl sha256
    EVENTS_MISSING = "events-missing"
    EVENTS_UNREADABLE = "events-unreadable"  # not gzip, or a line that is not an event
    EVENTS_SHA256 = "events-sha256"
    EVENTS_SIZE = "events-size"
    EVENT_COUNT = "event-count"
    EVENT_HASH = "event-hash"  # an event does not re-hash to its hash
    MERKLE_ROOT = "merkle-root"

    @property
    def verdict(self) -> Verdict:
        if self is Defect.SIGNATURE_UNVERIFIABLE:
            return Verdict.UNVERIFIABLE
        if self in (Defect.MANIFEST_MISSING, Defect.EVENTS_MISSING):
            return Verdict.MISSING
        return Verdict.MODIFIED


@dataclass(frozen=True)
class Problem:
    defect: Defect
    message: str
    seqs: tuple[int, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return self.defect.verdict

    def __str__(self) -> str:
        return self.message


# -- pure checks (no I/O): also what check-proof uses offline ---------------------------------


def signature_problem(manifest: Mapping[str, Any], keys: Iterable[str]) -> Problem | None:
    """None when the manifest's signature holds with one of ``keys``."""
    status = verify_signature(manifest, keys)
    if status is SignatureStatus.VALID:
        return None
    if status is SignatureStatus.UNVERIFIABLE:
        signing = manifest.get("signing")
        key_id = signing.get("keyId") if isinstance(signing, Mapping) else None
        return Problem(
            Defect.SIGNATURE_UNVERIFIABLE,
            f"the manifest is signed with key id {key_id}, which none of the known keys has "
            "(AUDIT_SIGNING_KEY, AUDIT_SIGNING_KEYS_PREVIOUS or --key-file): unverifiable, "
            "not tampered",
        )
    return Problem(
        Defect.SIGNATURE_MODIFIED,
        "the manifest's signature does not verify: it was changed after signing",
    )


# -- a part in the bucket -------------------------------------------------------------------


@dataclass
class CheckedPart:
    """One part, its manifest checked by :func:`open_part`; stream it with ``lines``."""

    record: Mapping[str, Any]
    manifest: dict[str, Any]
    manifest_sha256: str | None
    problems: list[Problem]
    cold: ColdStore
    events_read: int = 0
    bytes_read: int = 0
    hashes_checked: bool = False  # every line was decoded and re-hashed
    finished: bool = False
    manifest_bytes: bytes = b""  # as read and checked (a proof's log object carries them)

    @property
    def where(self) -> str:
        return f"{self.record.get('day')} part {self.record.get('part')}"

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> Verdict | None:
        """None while no problem is known; otherwise the gravest one's."""
        verdicts = {p.verdict for p in self.problems}
        for v in (Verdict.MODIFIED, Verdict.MISSING, Verdict.UNVERIFIABLE):
            if v in verdicts:
                return v
        return None

    @property
    def event_count(self) -> int:
        count = self.manifest.get("eventCount")
        return count if isinstance(count, int) else 0

    @property
    def jsonl(self) -> Mapping[str, Any]:
        jsonl = self.manifest.get("jsonl")
        return jsonl if isinstance(jsonl, Mapping) else {}

    def describe(self) -> str:
        return f"{self.where}: " + "; ".join(str(p) for p in self.problems)

    def lines(self, select: Callable[[bytes], bool] | None = None) -> Iterator[EventLine]:
        """Every line of the events object, decoded and re-hashed, in seq order.

        ``select`` (optional) sees each raw line first; a line it rejects is counted
        and covered by the sha256 check but neither decoded nor re-hashed (search's
        cheap pre-test). Nothing is yielded once a problem is known; checks that need
        the whole object are made when the stream ends."""
        if self.problems or not self.event_count:
            self.finished = not self.problems
            return
        key = self.jsonl.get("key") or self.record.get("jsonlKey")
        stream = PartStream(self.cold, str(key))
        merkle = MerkleBuilder()
        bad: list[Any] = []
        try:
            for i, raw in enumerate(stream.raw_lines()):
                self.events_read = i + 1
                if select is not None and not select(raw):
                    continue
                line = read_line(raw, i)
                if not line.rehashes:
                    bad.append(line.seq)
                leaf = line.hash if isinstance(line.hash, str) and HEX64.match(line.hash) else None
                merkle.add(leaf or ZERO_HASH)
                yield line
        except ClientError as e:
            if not is_not_found(e):
                raise  # the store failed us: an error, not a finding about the part
            self._add(Defect.EVENTS_MISSING, f"{key} is not in the bucket")
            return
        except (LineError, ValueError, ZlibError, EOFError) as e:
            self._add(Defect.EVENTS_UNREADABLE, f"{key} cannot be read as gzip JSONL: {e}")
            return
        finally:
            self.bytes_read = stream.bytes
        all_read = select is None or merkle.count == stream.lines
        self.hashes_checked = all_read
        self._check_content(stream, merkle if all_read else None, bad)
        self.finished = True

    def _check_content(
        self, stream: PartStream, merkle: MerkleBuilder | None, bad: list[Any]
    ) -> None:
        key, jsonl = stream.key, self.jsonl
        if stream.sha256 != jsonl.get("sha256"):
            self._add(Defect.EVENTS_SHA256, f"{key}: sha256 differs from its manifest's")
        if stream.bytes != jsonl.get("bytes"):
            self._add(
                Defect.EVENTS_SIZE,
                f"{key}: {stream.bytes} bytes, its manifest says {jsonl.get('bytes')}",
            )
        if stream.lines != self.event_count:
            self._add(
                Defect.EVENT_COUNT,
                f"{key}: {stream.lines} events in the object, its manifest says {self.event_count}",
            )
        if bad:
            ints = tuple(s for s in bad if is_integer_seq(s))
            self._add(
                Defect.EVENT_HASH,
                f"{key}: {len(bad)} event(s) do not re-hash to their hash: seq "
                f"{format_seq_ranges(sorted(set(ints))[:200]) or '?'}",
                ints,
            )
        if merkle is not None and merkle.root() != self.manifest.get("merkleRoot"):
            self._add(Defect.MERKLE_ROOT, f"{key}: the Merkle root differs from its manifest's")

    def _add(self, defect: Defect, message: str, seqs: tuple[int, ...] = ()) -> None:
        self.problems.append(Problem(defect, message, seqs))


def open_part(
    cold: ColdStore,
    record: Mapping[str, Any],
    keys: Iterable[str],
    vouch: Callable[[str, bytes], bool] | None = None,
) -> CheckedPart:
    """Load and check the manifest a batch record names (``manifestKey``): signature,
    sha256 against the record's ``manifestSha256``, and day, part, eventCount and the
    events' sha256 against the record (fields the record lacks are not compared, so
    ``{"manifestKey": key}`` checks a manifest found in the bucket on its own)."""
    key = str(record.get("manifestKey"))
    part = CheckedPart(record, {}, None, [], cold)
    try:
        raw = cold.get_bytes(key)
    except ClientError as e:
        if not is_not_found(e):
            raise
        part._add(Defect.MANIFEST_MISSING, f"{key} is not in the bucket")
        return part
    part.manifest_sha256 = hashlib.sha256(raw).hexdigest()
    part.manifest_bytes = raw
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        part._add(Defect.MANIFEST_UNREADABLE, f"{key} is not a JSON manifest")
        return part
    part.manifest = manifest
    problem = signature_problem(manifest, keys)
    # Without the HMAC key, the signed log (SPEC section 7) may vouch for these exact bytes.
    if (
        problem is not None
        and problem.defect is Defect.SIGNATURE_UNVERIFIABLE
        and vouch is not None
        and vouch(key, raw)
    ):
        problem = None
    if problem is not None:
        part.problems.append(problem)
        return part
    if "manifestSha256" in record and part.manifest_sha256 != record["manifestSha256"]:
        part._add(
            Defect.MANIFEST_NOT_RECORDED,
            f"{key} differs from the manifest its batch record names (sha256)",
        )
    compared = {  # the manifest's value, and the record's field that must agree
        "day": (manifest.get("day"), "day"),
        "part": (manifest.get("part"), "part"),
        "eventCount": (manifest.get("eventCount"), "eventCount"),
        "the events' sha256": (part.jsonl.get("sha256"), "jsonlSha256"),
    }
    for name, (claimed, field_name) in compared.items():
        if field_name in record and claimed != record[field_name]:
            part._add(
                Defect.RECORD_DISAGREES,
                f"the manifest says {name} {claimed!r}, its batch record {record[field_name]!r}",
            )
    return part

"""The encode step writes the very same archive with the C encoder (nativecodec) on and
off: the same gzip object bytes, Merkle root, summary, seq runs for the purge and
malformed events named, and the same chain break, on the benchmarks' payloads and on
batches it must refuse or that hold malformed events, neighbours and chain breaks."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import SON, Decimal128, Int64, ObjectId

from audit_archive.archive.encode import encode
from audit_archive.archive.results import Extracted, PartRef
from audit_archive.errors import ChainBreakError
from audit_archive.format import bsonpeek, nativecodec
from audit_archive.format.chain import Link
from audit_archive_dev import seed

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_archive

DAY = dt.date(2026, 1, 1)


def _encode(workdir: Path, raw: bytes, neighbours: str, enabled: bool) -> tuple[Any, ...]:
    """encode over ``raw`` staged in ``workdir``, the C encoder on or off: what it wrote
    (object sha256, summary, runs, malformed), or the chain break it raised."""
    ref = PartRef(DAY, 1, "test", "test", str(workdir))
    Path(ref.events_path).write_bytes(raw)
    Path(ref.neighbours_path).write_text(neighbours)
    seqs = [s for s in bsonpeek.int_seqs(raw) if s is not None]
    count = sum(1 for _ in bsonpeek.documents(raw))
    extracted = Extracted(ref, count, seqs[0], seqs[-1], None, None)
    before = nativecodec.ENABLED
    nativecodec.ENABLED = enabled
    try:
        encoded = encode(extracted, "prefix", 50)
    except ChainBreakError as e:
        return ("break", e.args)
    finally:
        nativecodec.ENABLED = before
    sha = hashlib.sha256(Path(ref.jsonl_path).read_bytes()).hexdigest()
    return (sha, encoded.summary, Path(ref.runs_path).read_text(), encoded.malformed)


def assert_same_archive(
    tmp_path: Path, raw: bytes, neighbours: str = "", taken: bool | list[bool] | None = True
) -> tuple[Any, ...]:
    """The same archive on and off; ``taken``: whether the C encoder must have taken
    every chunk (True), none (False), either (None), or its answers in order (a list)."""
    answers: list[bool] = []
    real = nativecodec.encode_chunk

    def recording(chunk: bytes) -> Any:
        answer = real(chunk)
        answers.append(answer is not None)
        return answer

    nativecodec.encode_chunk = recording  # type: ignore[assignment]
    try:
        on = _encode(tmp_path / "on", raw, neighbours, True)
    finally:
        nativecodec.encode_chunk = real  # type: ignore[assignment]
    off = _encode(tmp_path / "off", raw, neighbours, False)
    assert on == off
    if isinstance(taken, list):
        assert answers == taken
    elif taken is not None:
        assert answers and set(answers) == {taken}
    return on


def _mkdirs(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()


@pytest.mark.parametrize("payload", ["flat", "plain", "every"])
def test_the_benchmark_payloads_are_archived_alike(tmp_path: Path, payload: str) -> None:
    """Each benchmark payload, `every` (one value of every BSON type per event)
    included, is taken by the C encoder chunk after chunk, and archived as the Python
    path archives it: the same object bytes, summary (Merkle root) and runs."""
    _mkdirs(tmp_path)
    staged = tmp_path / "staged.bson"
    bench_archive._generate(staged, 1500, DAY, 1, payload)
    _, summary, _, malformed = assert_same_archive(tmp_path, staged.read_bytes(), taken=True)
    assert summary.event_count == 1500 and not malformed


def _events(n: int, first_seq: int = 1, **extra: Any) -> list[dict[str, Any]]:
    rng = random.Random(first_seq)
    docs = list(seed.chain(seed.day_times(DAY, n, rng), rng=rng, first_seq=first_seq))
    for doc in docs:
        doc["_id"] = ObjectId(rng.randbytes(12))
        doc.update(extra)
    return docs


def _raw(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(bson.encode(d) for d in docs)


_NAN_BITS = struct.pack("<Q", 0x7FF8000000000001)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return value


def _edit(docs: list[dict[str, Any]], i: int, change: Callable[[dict[str, Any]], None]) -> bytes:
    change(docs[i])
    return _raw(docs)


@pytest.mark.parametrize(
    "name, build, taken",
    [
        ("int64 seqs", lambda: _raw([{**d, "seq": Int64(d["seq"])} for d in _events(40)]), True),
        ("malformed hash", lambda: _edit(_events(40), 17, lambda d: d.update(hash="x")), False),
        ("malformed seq", lambda: _edit(_events(40), 17, lambda d: d.update(seq="17")), False),
        ("malformed at, last", lambda: _edit(_events(40), 39, lambda d: d.pop("at")), False),
        (
            "chain break",
            lambda: _edit(_events(40), 20, lambda d: d.update(prevHash="0" * 64)),
            True,
        ),
        ("a rehash differs", lambda: _edit(_events(40), 5, lambda d: d.update(action="x")), True),
        ("duplicate seq", lambda: _edit(_events(40), 9, lambda d: d.update(seq=9)), True),
        ("seqs descending", lambda: _raw(_events(40)[::-1]), True),
        (
            "a refused shape",
            lambda: _edit(_events(40), 3, lambda d: d.update(x=_deep(70))),
            False,
        ),
        (
            "a DBRef stored out of order (read back)",
            lambda: _edit(_events(40), 3, lambda d: d.update(x=SON([("$id", 1), ("$ref", "c")]))),
            True,
        ),
        (
            "a NaN with payload (read back)",
            lambda: _edit(_events(40), 3, lambda d: d.update(x=struct.unpack("<d", _NAN_BITS)[0])),
            True,
        ),
        (
            "rare types",
            lambda: _raw(_events(40, x=bson.Regex("a", "xi"), d=Decimal128("NaN"))),
            True,
        ),
        ("dollar strings", lambda: _raw(_events(40, tags=["a", "$b", "$c"])), True),
    ],
)
def test_batches_of_every_kind_are_archived_alike(
    tmp_path: Path, name: str, build: Any, taken: bool
) -> None:
    """``taken``: whether the C encoder takes the batch (else the Python path runs)."""
    _mkdirs(tmp_path)
    assert_same_archive(tmp_path, build(), taken=taken)


def test_neighbours_between_a_batchs_events(tmp_path: Path) -> None:
    """Another day's events (neighbours) in the holes of the chain: the same archive."""
    _mkdirs(tmp_path)
    docs = _events(60)
    raw = _raw([d for i, d in enumerate(docs) if i not in (30, 31)])
    link = [Link(d["seq"], d["prevHash"], d["hash"]) for d in docs[30:32]]
    neighbours = "".join(f'[{x.seq}, "{x.prev_hash}", "{x.hash}"]\n' for x in link)
    _, summary, runs, _ = assert_same_archive(tmp_path, raw, neighbours)
    assert summary.event_count == 58 and runs.count("[") > 2


def test_a_batch_it_takes_is_decoded_at_most_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast chain path asks a batch the C encoder took for its first event and its
    last ``_id``: two documents decoded of 1,500, and no decode_all."""
    _mkdirs(tmp_path)
    decoded: list[int] = []
    real = bson.decode

    def counting(data: Any, *args: Any, **kwargs: Any) -> Any:
        decoded.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(bson, "decode", counting)
    monkeypatch.setattr(bson, "decode_all", lambda *a, **k: pytest.fail("decode_all called"))
    docs = _events(1500)
    _encode(tmp_path / "on", _raw(docs), "", True)
    assert 0 < len(decoded) <= 2 * (len(_raw(docs)) // bsonpeek.READ_CHUNK + 1)


def test_a_malformed_event_ending_a_batch_sends_the_next_one_to_the_python_path(
    tmp_path: Path,
) -> None:
    """A malformed event's link is carried into the next batch (its gap is checked
    there): the C encoder is not asked for that batch, and the archive is the same."""
    _mkdirs(tmp_path)
    docs = _events(3000)  # three chunks: 1,471, 1,472 and 57 events
    ats = [doc["at"] for doc in docs]
    first_chunk = 0
    while first_chunk != (first_chunk := _last_of_first_chunk(_raw(docs))):
        for i, doc in enumerate(docs):  # the event without `at` must end the first chunk
            doc["at"] = ats[i]
        docs[first_chunk].pop("at")
    assert 0 < first_chunk < len(docs) - 1 and "at" not in docs[first_chunk]
    # Asked for the first chunk (refused: the malformed event) and the third, not the second.
    _, summary, _, malformed = assert_same_archive(tmp_path, _raw(docs), taken=[False, True])
    assert summary.event_count == 2999 and len(malformed) == 1


def _last_of_first_chunk(raw: bytes) -> int:
    ends = [end for _, end in bsonpeek.documents(raw)]
    return max(i for i, end in enumerate(ends) if end <= bsonpeek.READ_CHUNK)

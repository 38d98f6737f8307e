"""LazyDocuments: a staged chunk's documents as decode_all gives them, decoded only when
asked for (the encode step's batches the C encoder took)."""

from __future__ import annotations

import bson
import pytest
from bson.datetime_ms import DatetimeMS

from audit_archive.archive.staged import LazyDocuments
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS

DOCS = [{"_id": i, "seq": i, "at": DatetimeMS(i), "x": [i, 1.5]} for i in range(7)]
CHUNK = b"".join(bson.encode(d) for d in DOCS)


def test_every_index_and_slice_is_what_decode_all_gives() -> None:
    everything = bson.decode_all(CHUNK, FAST_CODEC_OPTIONS)
    lazy = LazyDocuments(CHUNK, len(DOCS))
    assert len(lazy) == 7
    assert [lazy[i] for i in range(-7, 7)] == everything * 2
    assert lazy[2:5] == everything[2:5] and lazy[::-1] == everything[::-1]
    assert [lazy.raw(i) for i in range(7)] == [bson.encode(d) for d in DOCS]
    with pytest.raises(IndexError):
        lazy[7]


def test_two_documents_are_decoded_one_by_one_then_the_chunk_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    decode, decode_all = bson.decode, bson.decode_all
    monkeypatch.setattr(bson, "decode", lambda *a, **k: calls.append("one") or decode(*a, **k))
    monkeypatch.setattr(
        bson, "decode_all", lambda *a, **k: calls.append("all") or decode_all(*a, **k)
    )
    lazy = LazyDocuments(CHUNK, len(DOCS))
    assert lazy[0]["seq"] == 0 and lazy[-1]["seq"] == 6 and lazy[0]["seq"] == 0
    assert calls == ["one", "one"]
    assert [d["seq"] for d in lazy] == list(range(7))
    assert calls == ["one", "one", "all"]

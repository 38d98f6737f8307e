"""A staged batch's documents decoded one at a time, on demand: what the encode step
reads of a batch the C encoder took (nativecodec), which needs no decoding but for the
one or two events the chain check names (its first, its last ``_id``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

import bson

from audit_archive.format import bsonpeek, nativecodec
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS

# Documents decoded one at a time before the whole chunk is decoded at once: the fast
# chain check asks for two; the event-by-event one (a neighbour between events, a break)
# for every one, and one decode_all costs less than a call per document.
_ONE_BY_ONE = 2


def raw_of(chunk: bytes, kept: list[int] | None) -> Callable[[int], bytes]:
    """The staged BSON bytes of a batch's i-th kept event (all kept when ``kept`` is
    None), found only when asked: the read-back check rarely needs them."""
    offsets: Sequence[int] = ()

    def raw(i: int) -> bytes:
        nonlocal offsets
        if not offsets:
            offsets = nativecodec.document_offsets(chunk) or bsonpeek.document_offsets(chunk)
        at = i if kept is None else kept[i]
        return chunk[offsets[at] : offsets[at + 1]]

    return raw


class LazyDocuments(Sequence[dict[str, Any]]):
    """The documents of ``chunk`` (concatenated BSON, ``count`` documents), each decoded
    with FAST_CODEC_OPTIONS (as encode decodes a whole batch) when first asked for; all
    at once from the third on."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self._chunk = chunk
        self._count = count
        self.raw = raw_of(chunk, None)  # the i-th document's BSON bytes as staged
        self._decoded: dict[int, dict[str, Any]] = {}
        self._all: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        if self._all is not None:
            return self._all[i]
        doc = self._decoded.get(i)
        if doc is None:
            if len(self._decoded) >= _ONE_BY_ONE:  # the slow chain check reads them all
                self._all = bson.decode_all(self._chunk, FAST_CODEC_OPTIONS)
                return self._all[i]
            doc = self._decoded[i] = bson.decode(self.raw(i), FAST_CODEC_OPTIONS)
        return doc

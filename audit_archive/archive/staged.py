"""A staged batch's documents decoded one at a time, on demand: what the encode step
reads of a batch the C encoder took (nativecodec), which needs no decoding but for the
one or two events the chain check names (its first, its last ``_id``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import bson

from audit_archive.format import bsonpeek
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS

# Documents decoded one at a time before the whole chunk is decoded at once: the fast
# chain check asks for two; the event-by-event one (a neighbour between events, a break)
# for every one, and one decode_all costs less than a call per document.
_ONE_BY_ONE = 2


class LazyDocuments(Sequence[dict[str, Any]]):
    """The documents of ``chunk`` (concatenated BSON, ``count`` documents), each decoded
    with FAST_CODEC_OPTIONS (as encode decodes a whole batch) when first asked for; all
    at once from the third on."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self._chunk = chunk
        self._count = count
        self._spans: list[tuple[int, int]] = []
        self._decoded: dict[int, dict[str, Any]] = {}
        self._all: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self._count

    def raw(self, i: int) -> bytes:
        """The i-th document's BSON bytes as staged."""
        if not self._spans:
            self._spans = list(bsonpeek.documents(self._chunk))
        start, end = self._spans[i]
        return self._chunk[start:end]

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

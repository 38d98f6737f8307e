"""The archive's lines for stored events, as ``encode`` writes them (fastcodec's calls in
encode's order), for the tests that check SPEC 3's read-back at the encoder level."""

from __future__ import annotations

import bson

from audit_archive.format import fastcodec
from audit_archive.format.fastcodec import FAST_CODEC_OPTIONS


def archive_lines(raws: list[bytes]) -> tuple[list[bytes], list[int]]:
    """The lines the archive writes for these stored events (BSON bytes as stored), and
    the positions it read back (those it could not prove readable by counting, and those
    whose decode lost something)."""
    docs = [bson.decode(raw, FAST_CODEC_OPTIONS) for raw in raws]
    encoded = fastcodec.encode_batch(docs)
    checked = fastcodec.lines_to_check(encoded, docs, b"".join(raws), raws.__getitem__)
    joined, _ = fastcodec.make_readable(encoded.joined, checked, encoded.rehashes, raws.__getitem__)
    return fastcodec.lines_of(joined), checked

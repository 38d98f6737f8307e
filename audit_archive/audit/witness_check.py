"""What ``verify --witness KEY --quorum N`` adds to the log's check (SPEC section 8).

The cosigned checkpoints are the head and every ``log/witnessed/<size>`` whose log
signature verifies and that carries valid cosignatures of at least N of the given witness
keys (other lines ignored). ``log_check`` checks each against the tree like a checkpoint
kept outside the archive: one the log does not extend is a finding of the whole log
(history rewritten after witnesses cosigned it). Parts past the largest cosigned
checkpoint that matches are findings on their days.
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import ClientError

from audit_archive.format.checkpoint import Checkpoint, open_checkpoint
from audit_archive.format.logentry import latest_checkpoint_key, witnessed_prefix
from audit_archive.format.note import NoteError, Verifier
from audit_archive.format.witness import cosignatures
from audit_archive.stores.clients import Stores

Cosigned = dict[str, tuple[bytes, tuple[Checkpoint, tuple[str, ...]]]]


def quorum_of(
    note: bytes, verifier: Verifier, witnesses: Sequence[Verifier], quorum: int
) -> tuple[Checkpoint, tuple[str, ...]] | None:
    """The checkpoint and the witnesses that validly cosigned it, if at least ``quorum``."""
    try:
        checkpoint = open_checkpoint(note, verifier)
        found = cosignatures(note, witnesses)
    except NoteError:
        return None
    names = tuple(sorted(c.witness for c in found))
    return (checkpoint, names) if len(names) >= quorum else None


def cosigned_checkpoints(
    stores: Stores, verifier: Verifier, witnesses: Sequence[Verifier], quorum: int
) -> Cosigned:
    """Key -> (note, (checkpoint, witness names)) for every checkpoint with a quorum."""
    prefix = stores.settings.cold_prefix
    keys = [latest_checkpoint_key(prefix)]
    keys += [o["Key"] for o in stores.cold.list_keys(witnessed_prefix(prefix))]
    out: Cosigned = {}
    for key in keys:
        try:
            note = stores.cold.get_bytes(key)
        except ClientError:
            continue
        got = quorum_of(note, verifier, witnesses, quorum)
        if got is not None:
            out[key] = (note, got)
    return out


def witnessed_coverage(
    out,
    cosigned: Cosigned,
    good_sizes: list[int],
    rewritten: bool,
) -> None:
    """Set ``out.witnessed`` (leaves a matching cosigned checkpoint covers) and who."""
    sizes = {cp.size: names for _, (cp, names) in cosigned.values()}
    matching = [s for s in good_sizes if s in sizes]
    out.witnessed = 0 if rewritten or not matching else max(matching)
    out.witnesses = sizes.get(out.witnessed, ()) if matching and not rewritten else ()

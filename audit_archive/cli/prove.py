"""``audit-archive prove`` and ``check-proof``: one event with its inclusion proof, and
the offline check an auditor runs on it (keys from the environment or a key file)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from audit_archive.audit.prove import ProveError, check_proof, prove_seq
from audit_archive.cli.logkeys import verifier, verifier_key_option, witness_options, witnesses
from audit_archive.cli.options import MAX_PROOF_BYTES, SEQ, quiet_option, read_capped
from audit_archive.cli.progress import Progress
from audit_archive.cli.shell import FINDING, Refused, opened_stores
from audit_archive.errors import ConfigError
from audit_archive.format import proof
from audit_archive.settings import Settings, keys_from_file, verification_keys_from_env


def _unwritable(path: str) -> str | None:
    """Why ``path`` cannot be written (checked before any work), or None."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        return "it is a directory"
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    if not os.access(target if target.exists() else folder, os.W_OK):
        return "permission denied"
    return None


@click.command("prove", short_help="write a JSON proof that archived event N is in its signed part")
@click.option("--seq", type=SEQ, required=True, metavar="N", help="the event's seq")
@click.option("--out", "-o", metavar="FILE", help="write the proof here (default: standard output)")
@quiet_option
def prove_command(seq: int, out: str | None, quiet: bool) -> int:
    """Find archived event --seq N, check its part (signature, sha256, Merkle root) and
    write a proof: the event's line, its leaf index, the RFC 6962 audit path and the
    signed manifest. Exit 1: the event is not archived or its part does not check out.
    """
    problem = _unwritable(out) if out else None
    if problem:
        raise Refused(f"cannot write --out {out}: {problem}")
    # The HMAC key is optional: with the signed log, a part it covers is proven without it.
    settings = Settings.from_env(require_signing_key=False)
    with opened_stores(settings) as stores, Progress(quiet=quiet) as progress:

        def reading(done: int, total: int) -> None:
            progress.update(done, total, f"{done:,}/{total:,} events", label="reading the part")

        try:
            document = prove_seq(stores, seq, reading)
        except ProveError as e:
            raise Refused(str(e), FINDING) from None
    text = proof.dumps(document)
    if not out:
        sys.stdout.write(text)
        return 0
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as e:
        raise Refused(f"cannot write --out {out}: {e.strerror}") from None
    m = document["manifest"]
    click.echo(
        f"wrote {out}: seq {seq}, {m['day']} part {m['part']}, leaf "
        f"{document['leafIndex']} of {document['treeSize']}",
        err=True,
    )
    return 0


@click.command("check-proof", short_help="verify a proof file offline (exit 0 valid, 1 not)")
@click.argument("file", metavar="FILE")
@click.option(
    "--key-file",
    metavar="PATH",
    help="read the HMAC key(s) from this file, one per line, instead of the environment",
)
@verifier_key_option
@witness_options
def check_proof_command(
    file: str,
    key_file: str | None,
    verifier_key: str | None,
    witness_keys: tuple[str, ...],
    quorum: int | None,
) -> int:
    """Verify a proof written by 'prove' (FILE, '-' for standard input), without MongoDB
    or S3: the event re-hashes, its audit path leads to the manifest's merkleRoot, and the
    manifest's signature holds. Keys: the signed log's public verifier key
    (AUDIT_LOG_VERIFIER_KEY or --verifier-key: then the manifest must be in a signed
    checkpoint), and/or the HMAC keys (AUDIT_SIGNING_KEY and AUDIT_SIGNING_KEYS_PREVIOUS,
    or --key-file).
    """
    # Verification keys by the same rule as Settings, without requiring the rest of the
    # configuration: check-proof runs where there is no MongoDB or S3.
    keys = keys_from_file(key_file) if key_file else verification_keys_from_env()
    log_verifier = verifier(verifier_key)
    witness_verifiers, wanted = witnesses(witness_keys, quorum)
    if witness_verifiers and log_verifier is None:
        raise ConfigError("--witness", "needs the log's verifier key (--verifier-key)")
    if not keys and log_verifier is None:
        raise Refused(
            "no key: set AUDIT_LOG_VERIFIER_KEY (or pass --verifier-key), or "
            "AUDIT_SIGNING_KEY (or AUDIT_SIGNING_KEYS_PREVIOUS, or pass --key-file)"
        )
    try:
        data = read_capped(file, MAX_PROOF_BYTES)
    except OSError as e:
        raise Refused(f"cannot read {file}: {e.strerror}") from None
    try:
        result = check_proof(_proof_document(data), keys, log_verifier, witness_verifiers, wanted)
    except _NotAProof as e:
        click.echo(f"INVALID proof: not a proof: {e}", err=True)
        return FINDING
    except RecursionError:  # parsed, but nested deeper than checking it can go
        click.echo("INVALID proof: not a proof: its JSON is nested too deeply", err=True)
        return FINDING
    click.echo(proof.describe(result), err=not result.ok)
    return 0 if result.ok else FINDING


class _NotAProof(Exception):
    """A proof file that cannot even be read as one (one line, exit 1: rejected)."""


def _proof_document(data: bytes) -> object:
    """The proof file's JSON value (None for text that is no JSON: check_proof names
    that); _NotAProof for binary data or JSON nested deeper than the parser goes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _NotAProof("the file is not UTF-8 text (binary data?)") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise _NotAProof("its JSON is nested too deeply") from None
    except ValueError:
        return None

"""``audit-archive prove`` and ``check-proof``: one event with its inclusion proof, and
the offline check an auditor runs on it (keys from the environment or a key file)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from audit_archive.audit.prove import ProveError, check_proof, prove_seq
from audit_archive.cli.logkeys import (
    add_verifier_option,
    add_witness_options,
    verifier,
    witnesses,
)
from audit_archive.cli.options import MAX_PROOF_BYTES, read_capped, seq_arg
from audit_archive.errors import ConfigError
from audit_archive.format import proof
from audit_archive.settings import Settings, keys_from_file, verification_keys_from_env
from audit_archive.stores.clients import open_stores
from audit_archive.stores.privileges import Access


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prove",
        help="write a JSON proof that archived event N is in its signed part",
        description=(
            "Find archived event --seq N, check its part (signature, sha256, Merkle root) and "
            "write a proof: the event's line, its leaf index, the RFC 6962 audit path and the "
            "signed manifest. Exit 1: the event is not archived or its part does not check out."
        ),
    )
    p.add_argument("--seq", type=seq_arg, required=True, metavar="N", help="the event's seq")
    p.add_argument(
        "--out", "-o", metavar="FILE", help="write the proof here (default: standard output)"
    )
    p.set_defaults(handler=run_prove)

    c = sub.add_parser(
        "check-proof",
        help="verify a proof file offline (exit 0 valid, 1 not)",
        description=(
            "Verify a proof written by 'prove', without MongoDB or S3: the event re-hashes, its "
            "audit path leads to the manifest's merkleRoot, and the manifest's signature holds. "
            "Keys: the signed log's public verifier key (AUDIT_LOG_VERIFIER_KEY or --verifier-key: "
            "then the manifest must be in a signed checkpoint), and/or the HMAC keys "
            "(AUDIT_SIGNING_KEY and AUDIT_SIGNING_KEYS_PREVIOUS, or --key-file)."
        ),
    )
    c.add_argument("file", metavar="FILE", help="the proof ('-' for standard input)")
    c.add_argument(
        "--key-file",
        metavar="PATH",
        help="read the HMAC key(s) from this file, one per line, instead of the environment",
    )
    add_verifier_option(c)
    add_witness_options(c)
    c.set_defaults(handler=run_check)


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


def run_prove(args: argparse.Namespace) -> int:
    problem = _unwritable(args.out) if args.out else None
    if problem:
        print(f"audit-archive prove: cannot write --out {args.out}: {problem}", file=sys.stderr)
        return 2
    # The HMAC key is optional: with the signed log, a part it covers is proven without it.
    stores = open_stores(Settings.from_env(require_signing_key=False), access=Access.READ)
    try:
        document = prove_seq(stores, args.seq)
    except ProveError as e:
        print(f"audit-archive prove: {e}", file=sys.stderr)
        return 1
    finally:
        stores.close()
    text = proof.dumps(document)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            print(
                f"audit-archive prove: cannot write --out {args.out}: {e.strerror}",
                file=sys.stderr,
            )
            return 2
        m = document["manifest"]
        print(
            f"wrote {args.out}: seq {args.seq}, {m['day']} part {m['part']}, leaf "
            f"{document['leafIndex']} of {document['treeSize']}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0


def _keys(args: argparse.Namespace) -> tuple[str, ...]:
    """Verification keys, read by the same rule as Settings (settings.py, signing keys),
    without requiring the rest of the configuration: check-proof runs where there is no
    MongoDB or S3."""
    if args.key_file:
        return keys_from_file(args.key_file)
    return verification_keys_from_env()


def run_check(args: argparse.Namespace) -> int:
    keys = _keys(args)
    log_verifier = verifier(args)
    witness_keys, quorum = witnesses(args)
    if witness_keys and log_verifier is None:
        raise ConfigError("--witness", "needs the log's verifier key (--verifier-key)")
    if not keys and log_verifier is None:
        print(
            "audit-archive check-proof: no key: set AUDIT_LOG_VERIFIER_KEY (or pass "
            "--verifier-key), or AUDIT_SIGNING_KEY (or AUDIT_SIGNING_KEYS_PREVIOUS, or "
            "pass --key-file)",
            file=sys.stderr,
        )
        return 2
    try:
        data = read_capped(args.file, MAX_PROOF_BYTES)
    except OSError as e:
        print(f"audit-archive check-proof: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    try:
        result = check_proof(_proof_document(data), keys, log_verifier, witness_keys, quorum)
    except _NotAProof as e:
        print(f"INVALID proof: not a proof: {e}", file=sys.stderr)
        return 1
    except RecursionError:  # parsed, but nested deeper than checking it can go
        print("INVALID proof: not a proof: its JSON is nested too deeply", file=sys.stderr)
        return 1
    print(proof.describe(result), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


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

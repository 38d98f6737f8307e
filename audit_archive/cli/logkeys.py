"""The signed log's options shared by the readers: ``--verifier-key`` (else
AUDIT_LOG_VERIFIER_KEY, else derived from AUDIT_LOG_SIGNING_KEY), and ``keygen``."""

from __future__ import annotations

import argparse
import sys

from audit_archive.errors import ConfigError
from audit_archive.format.note import Verifier, generate_key, parse_verifier
from audit_archive.format.witness import generate_witness_key, parse_witness_verifier
from audit_archive.settings import Keys


def add_verifier_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verifier-key",
        metavar="KEY",
        help="the signed log's public verifier key (default: AUDIT_LOG_VERIFIER_KEY)",
    )


def verifier(args: argparse.Namespace) -> Verifier | None:
    """The verifier key from the flag or the environment; ConfigError names the source."""
    if getattr(args, "verifier_key", None):
        return parse_verifier(args.verifier_key.strip(), "--verifier-key")
    return Keys.read().log_verifier


def add_witness_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--witness",
        metavar="KEY",
        action="append",
        default=[],
        help="a witness's verifier key (repeatable): require its cosignature (SPEC 8)",
    )
    parser.add_argument(
        "--quorum",
        metavar="N",
        type=int,
        help="how many of the --witness keys must have cosigned (default: all of them)",
    )


def witnesses(args: argparse.Namespace) -> tuple[list[Verifier], int]:
    """The --witness keys and --quorum (1..their number); ConfigError names the flag."""
    keys = [parse_witness_verifier(k.strip(), "--witness") for k in args.witness]
    quorum = len(keys) if args.quorum is None else args.quorum
    if args.quorum is not None and not 1 <= quorum <= len(keys):
        raise ConfigError(
            "--quorum", f"must be from 1 to the number of --witness keys ({len(keys)})"
        )
    return keys, quorum


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keygen",
        help="make a new key pair for the signed log (prints the signer and verifier keys)",
        description=(
            "Print a new Ed25519 signer key (for AUDIT_LOG_SIGNING_KEY: keep it secret) and its "
            "verifier key (for AUDIT_LOG_VERIFIER_KEY: give it to auditors) in the C2SP "
            "signed-note formats. NAME is the log's origin, a schema-less URL such as "
            "dezky.example/audit-archive."
        ),
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the log's origin (no spaces, no '+')")
    p.add_argument(
        "--witness",
        metavar="NAME",
        help=(
            "make a witness key instead (type 0x04, cosignature/v1) named NAME, a schema-less "
            "URL such as witness.example/w1: prints the signer key (the witness's --key file) "
            "and, on the next line, the verifier key (for AUDIT_LOG_WITNESSES and auditors)"
        ),
    )
    p.set_defaults(handler=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
    if args.witness:
        return _witness_keygen(args.witness)
    if not args.name:
        raise ConfigError("NAME", "is required: the log's origin, or --witness NAME")
    try:
        signer = generate_key(args.name)
    except ValueError as e:
        raise ConfigError("NAME", str(e)) from None
    print(f"AUDIT_LOG_SIGNING_KEY={signer.key_string}")
    print(f"AUDIT_LOG_VERIFIER_KEY={signer.verifier.key_string}")
    print(
        "Keep the signing key secret (it signs the log); give the verifier key to auditors.",
        file=sys.stderr,
    )
    return 0


def _witness_keygen(name: str) -> int:
    try:
        signer = generate_witness_key(name)
    except ValueError as e:
        raise ConfigError("--witness", str(e)) from None
    print(signer.key_string)
    print(signer.verifier.key_string)
    print(
        "Line 1 is the witness's signer key: keep it secret, in the file given to "
        "audit-archive witness --key. Line 2 is its verifier key: give it to the log's "
        "operators (AUDIT_LOG_WITNESSES) and to auditors (verify --witness).",
        file=sys.stderr,
    )
    return 0

"""The signed log's options shared by the readers: ``--verifier-key`` (else
AUDIT_LOG_VERIFIER_KEY, else derived from AUDIT_LOG_SIGNING_KEY), and ``keygen``."""

from __future__ import annotations

import argparse
import sys

from audit_archive.errors import ConfigError
from audit_archive.format.note import Verifier, generate_key, parse_verifier
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
    p.add_argument("name", metavar="NAME", help="the log's origin (no spaces, no '+')")
    p.set_defaults(handler=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
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

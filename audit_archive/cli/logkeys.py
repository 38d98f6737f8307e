"""The signed log's options shared by the readers: ``--verifier-key`` (else
AUDIT_LOG_VERIFIER_KEY, else derived from AUDIT_LOG_SIGNING_KEY), and ``keygen``."""

from __future__ import annotations

import click

from audit_archive.errors import ConfigError
from audit_archive.format.note import Verifier, generate_key, parse_verifier
from audit_archive.settings import Keys

verifier_key_option = click.option(
    "--verifier-key",
    metavar="KEY",
    help="the signed log's public verifier key (default: AUDIT_LOG_VERIFIER_KEY)",
)


def verifier(verifier_key: str | None) -> Verifier | None:
    """The verifier key from the flag or the environment; ConfigError names the source."""
    if verifier_key:
        return parse_verifier(verifier_key.strip(), "--verifier-key")
    return Keys.read().log_verifier


@click.command(
    "keygen",
    short_help="make a new key pair for the signed log (prints the signer and verifier keys)",
)
@click.argument("name", metavar="NAME")
def command(name: str) -> int:
    """Print a new Ed25519 signer key (for AUDIT_LOG_SIGNING_KEY: keep it secret) and its
    verifier key (for AUDIT_LOG_VERIFIER_KEY: give it to auditors) in the C2SP signed-note
    formats. NAME is the log's origin, a schema-less URL such as
    dezky.example/audit-archive (no spaces, no '+').
    """
    try:
        signer = generate_key(name)
    except ValueError as e:
        raise ConfigError("NAME", str(e)) from None
    click.echo(f"AUDIT_LOG_SIGNING_KEY={signer.key_string}")
    click.echo(f"AUDIT_LOG_VERIFIER_KEY={signer.verifier.key_string}")
    click.echo(
        "Keep the signing key secret (it signs the log); give the verifier key to auditors.",
        err=True,
    )
    return 0

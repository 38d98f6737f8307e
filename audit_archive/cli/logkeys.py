"""The signed log's options shared by the readers: ``--verifier-key`` (else
AUDIT_LOG_VERIFIER_KEY, else derived from AUDIT_LOG_SIGNING_KEY), ``--witness`` and
``--quorum`` (SPEC 8), and ``keygen``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from audit_archive.errors import ConfigError
from audit_archive.format.note import Verifier, generate_key, parse_verifier
from audit_archive.format.witness import generate_witness_key, parse_witness_verifier
from audit_archive.settings import Keys

F = TypeVar("F", bound=Callable[..., Any])

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


def witness_options(f: F) -> F:
    """``--witness KEY`` (repeatable) and ``--quorum N``, passed as ``witness_keys`` and
    ``quorum``."""
    f = click.option(
        "--quorum", metavar="N", type=int,
        help="how many of the --witness keys must have cosigned (default: all of them)",
    )(f)  # fmt: skip
    return click.option(
        "--witness", "witness_keys", metavar="KEY", multiple=True,
        help="a witness's verifier key (repeatable): require its cosignature (SPEC 8)",
    )(f)  # fmt: skip


def witnesses(witness_keys: Sequence[str], quorum: int | None) -> tuple[list[Verifier], int]:
    """The --witness keys and --quorum (1..their number); ConfigError names the flag."""
    keys = [parse_witness_verifier(k.strip(), "--witness") for k in witness_keys]
    wanted = len(keys) if quorum is None else quorum
    if quorum is not None and not 1 <= wanted <= len(keys):
        raise ConfigError(
            "--quorum", f"must be from 1 to the number of --witness keys ({len(keys)})"
        )
    return keys, wanted


@click.command(
    "keygen",
    short_help="make a new key pair for the signed log (prints the signer and verifier keys)",
)
@click.argument("name", metavar="NAME", required=False)
@click.option(
    "--witness",
    "witness_name",
    metavar="NAME",
    help="make a witness key instead (type 0x04, cosignature/v1) named NAME, a schema-less "
    "URL such as witness.example/w1: prints the signer key (the witness's --key file) and, "
    "on the next line, the verifier key (for AUDIT_LOG_WITNESSES and auditors)",
)
def command(name: str | None, witness_name: str | None) -> int:
    """Print a new Ed25519 signer key (for AUDIT_LOG_SIGNING_KEY: keep it secret) and its
    verifier key (for AUDIT_LOG_VERIFIER_KEY: give it to auditors) in the C2SP signed-note
    formats. NAME is the log's origin, a schema-less URL such as
    dezky.example/audit-archive (no spaces, no '+').
    """
    if witness_name:
        return _witness_keygen(witness_name)
    if not name:
        raise ConfigError("NAME", "is required: the log's origin, or --witness NAME")
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


def _witness_keygen(name: str) -> int:
    try:
        signer = generate_witness_key(name)
    except ValueError as e:
        raise ConfigError("--witness", str(e)) from None
    click.echo(signer.key_string)
    click.echo(signer.verifier.key_string)
    click.echo(
        "Line 1 is the witness's signer key: keep it secret, in the file given to "
        "audit-archive witness --key. Line 2 is its verifier key: give it to the log's "
        "operators (AUDIT_LOG_WITNESSES) and to auditors (verify --witness).",
        err=True,
    )
    return 0

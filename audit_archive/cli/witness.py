"""``audit-archive witness``: run the witness the project ships (SPEC section 8).

Auditors (or a second account) run it so that the archive cannot delete anything from hot
until the witness has checked that the log only grew. It needs its own key (``keygen
--witness NAME``), the verifier key of each log it witnesses, and a state file it alone
writes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from audit_archive.errors import ConfigError
from audit_archive.format.note import Verifier, parse_verifier
from audit_archive.format.witness import parse_witness_signer
from audit_archive.settings import keys_from_file
from audit_archive.stores.witnessstate import StateFile
from audit_archive.witness.server import WitnessServer
from audit_archive.witness.service import Witness


@click.command(
    "witness", short_help="run a C2SP tlog-witness that cosigns the signed log's checkpoints"
)
@click.option("--listen", metavar="HOST:PORT", required=True, help="address to serve on")
@click.option(
    "--key",
    metavar="FILE",
    required=True,
    help="file holding the witness's signer key (keygen --witness NAME)",
)
@click.option(
    "--log",
    "logs",
    metavar="VERIFIER_KEY",
    multiple=True,
    required=True,
    help="a log's verifier key (repeatable): checkpoints of its origin are cosigned",
)
@click.option("--state", metavar="FILE", required=True, help="the witness's state file")
def command(listen: str, key: str, logs: tuple[str, ...], state: str) -> int:
    """Serve POST /add-checkpoint (C2SP tlog-witness): cosign a log's checkpoint only when
    a consistency proof shows it extends the last one this witness cosigned. The state
    file keeps that checkpoint per log across restarts.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    server = build(listen, key, logs, state)
    names = ", ".join(sorted(server.witness.logs))
    click.echo(
        f"witness {server.witness.signer.verifier.key_string} serving {server.url}/add-checkpoint "
        f"for {names}",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("--listen", "must be HOST:PORT, such as 127.0.0.1:7380")
    return host.strip("[]") or "0.0.0.0", int(port)


def _signer_from(path: str):
    lines = [k for k in keys_from_file(path) if k.startswith("PRIVATE+")]
    if len(lines) != 1:
        raise ConfigError("--key", f"{path} must hold exactly one witness signer key")
    return parse_witness_signer(lines[0], "--key")


def build(listen: str, key: str, logs: Sequence[str], state: str) -> WitnessServer:
    """The server, with every option checked (ConfigError naming the option)."""
    address = _listen(listen)
    signer = _signer_from(key)
    verifiers: list[Verifier] = [parse_verifier(k.strip(), "--log") for k in logs]
    try:
        state_file = StateFile(state)
    except (OSError, RuntimeError) as e:
        raise ConfigError("--state", str(e)) from None
    return WitnessServer(address, Witness(signer, verifiers, state_file))

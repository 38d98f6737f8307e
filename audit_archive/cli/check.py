"""``audit-archive check``: validate the configuration, reach both tiers and ask MongoDB
for every privilege the archive needs, so a bad variable or a missing grant is found when
deploying, not at 03:00."""

from __future__ import annotations

import click

from audit_archive.cli.shell import opened_stores
from audit_archive.format.manifest import key_id
from audit_archive.redact import redact
from audit_archive.settings import DefinitionSettings, Settings
from audit_archive.stores.privileges import Access


@click.command(
    "check", short_help="validate configuration and connectivity (exit 2 naming the bad variable)"
)
def command() -> int:
    """Validate every variable, connect to MongoDB and S3, check the bucket."""
    DefinitionSettings.from_env()
    settings = Settings.from_env()
    with opened_stores(settings, access=Access.ARCHIVE) as stores:
        stores.hot.ensure_indexes()
    where = redact(settings.cold_endpoint or "AWS S3", settings.secrets)  # userinfo masked
    click.echo(
        f"ok: MongoDB database {settings.database!r} reachable, with every privilege the "
        f"archive needs; bucket {settings.cold_bucket!r} at {where} usable; uploads "
        f"confirmed by AUDIT_COLD_CONFIRM={settings.cold_confirm}; signing key id "
        f"{key_id(settings.signing_key.get_secret_value())}"
    )
    return 0

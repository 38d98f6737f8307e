"""``audit-archive check``: validate the configuration, reach both tiers and ask MongoDB
for every privilege the archive needs, so a bad variable or a missing grant is found when
deploying, not at 03:00."""

from __future__ import annotations

import argparse

from audit_archive.format.manifest import key_id
from audit_archive.redact import redact
from audit_archive.settings import DefinitionSettings, Settings
from audit_archive.stores.clients import open_stores


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="validate configuration and connectivity (exit 2 naming the bad variable)",
        description="Validate every variable, connect to MongoDB and S3, check the bucket.",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    DefinitionSettings.from_env()
    settings = Settings.from_env()
    stores = open_stores(settings)
    try:
        stores.hot.ensure_indexes()
    finally:
        stores.close()
    where = redact(settings.cold_endpoint or "AWS S3", settings.secrets)  # userinfo masked
    print(
        f"ok: MongoDB database {settings.database!r} reachable, with every privilege the "
        f"archive needs; bucket {settings.cold_bucket!r} at {where} usable; uploads "
        f"confirmed by AUDIT_COLD_CONFIRM={settings.cold_confirm}; signing key id "
        f"{key_id(settings.signing_key.get_secret_value())}"
    )
    return 0

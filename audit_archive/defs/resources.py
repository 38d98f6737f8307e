"""Dagster resources: the hot store (Mongo), cold storage (S3) and the signing keys.

Every field defaults to None, meaning "the SPEC's environment variable, read when the
run starts"; a field set in code or run config overrides it (use ``EnvVar`` for
secrets so the UI shows the variable's name, never its value). ``ArchiveResource``
groups the three, validates the whole configuration and proves both tiers reachable
when a run starts, before any op does I/O.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from audit_archive.settings import Settings
from audit_archive.stores.clients import Stores, open_stores


def _overrides(resource: ConfigurableResource, mapping: dict[str, str]) -> dict[str, str]:
    out = {}
    for attr, variable in mapping.items():
        value = getattr(resource, attr)
        if value is not None:
            out[variable] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


class MongoResource(ConfigurableResource):
    """The hot MongoDB: events to archive, batch records and leases (pymongo)."""

    uri: str | None = Field(default=None, description="Overrides MONGODB_URI.")
    events_collection: str | None = Field(
        default=None, description="Overrides AUDIT_EVENTS_COLLECTION."
    )
    batches_collection: str | None = Field(
        default=None, description="Overrides AUDIT_BATCHES_COLLECTION."
    )

    def env_overrides(self) -> dict[str, str]:
        return _overrides(
            self,
            {
                "uri": "MONGODB_URI",
                "events_collection": "AUDIT_EVENTS_COLLECTION",
                "batches_collection": "AUDIT_BATCHES_COLLECTION",
            },
        )


class S3Resource(ConfigurableResource):
    """S3-compatible cold storage (boto3; path-style addressing when an endpoint is set,
    as MinIO and Hetzner need)."""

    endpoint: str | None = Field(default=None, description="Overrides AUDIT_COLD_ENDPOINT.")
    region: str | None = Field(default=None, description="Overrides AUDIT_COLD_REGION.")
    bucket: str | None = Field(default=None, description="Overrides AUDIT_COLD_BUCKET.")
    prefix: str | None = Field(default=None, description="Overrides AUDIT_COLD_PREFIX.")
    access_key: str | None = Field(default=None, description="Overrides AUDIT_COLD_ACCESS_KEY.")
    secret_key: str | None = Field(
        default=None, description="Overrides AUDIT_COLD_SECRET_KEY (use EnvVar)."
    )
    sse: bool | None = Field(default=None, description="Overrides AUDIT_COLD_SSE.")

    def env_overrides(self) -> dict[str, str]:
        return _overrides(
            self,
            {
                "endpoint": "AUDIT_COLD_ENDPOINT",
                "region": "AUDIT_COLD_REGION",
                "bucket": "AUDIT_COLD_BUCKET",
                "prefix": "AUDIT_COLD_PREFIX",
                "access_key": "AUDIT_COLD_ACCESS_KEY",
                "secret_key": "AUDIT_COLD_SECRET_KEY",
                "sse": "AUDIT_COLD_SSE",
            },
        )


class SigningResource(ConfigurableResource):
    """The HMAC key that signs new manifests, and retired keys that still verify old ones."""

    key: str | None = Field(default=None, description="Overrides AUDIT_SIGNING_KEY (use EnvVar).")
    previous_keys: str | None = Field(
        default=None, description="Overrides AUDIT_SIGNING_KEYS_PREVIOUS (use EnvVar)."
    )

    def env_overrides(self) -> dict[str, str]:
        return _overrides(
            self, {"key": "AUDIT_SIGNING_KEY", "previous_keys": "AUDIT_SIGNING_KEYS_PREVIOUS"}
        )


class ArchiveResource(ConfigurableResource):
    """Both tiers and the keys, validated and connected once per run."""

    mongo: MongoResource = Field(default_factory=MongoResource)
    s3: S3Resource = Field(default_factory=S3Resource)
    signing: SigningResource = Field(default_factory=SigningResource)

    _stores: Stores | None = PrivateAttr(default=None)

    def settings(self, env: dict[str, str] | None = None) -> Settings:
        merged: dict[str, Any] = dict(os.environ if env is None else env)
        for part in (self.mongo, self.s3, self.signing):
            merged.update(part.env_overrides())
        return Settings.from_env(merged)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # ConfigError here fails the run before any op starts, naming the variable.
        self._stores = open_stores(self.settings())

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = None

    @property
    def stores(self) -> Stores:
        if self._stores is None:  # used outside a run (tests, sensors): connect lazily
            self._stores = open_stores(self.settings())
        return self._stores

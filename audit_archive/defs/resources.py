"""Dagster resources: cold storage (``dagster_aws.s3.S3Resource``), the hot MongoDB, and
``ArchiveResource``, which the ops use and which holds both.

The SPEC's variables stay the one way to configure the archive, and ``Settings``
(settings.py) the one place they are read: ``ArchiveResource`` reads it from the
environment when a run starts and opens the stores from it. The two store resources are
what the Resources tab shows: each connection field is bound to its variable with
``EnvVar`` when the variable is set as the code location loads, so the tab shows the
variable's name (never a secret); a variable unset at load shows the SPEC default (no
endpoint: AWS), and the environment when the run starts still decides. A secret given as
a file (``X_FILE``, settings.py) binds nothing: the run reads the file through
``Settings``, so the value is never in the resource's configuration.

Nobody at the Launchpad can point a run at other stores (issue #16, item 7): a run that
could choose the S3 endpoint would upload a day there and purge it from hot. Dagster
exposes a top-level Pythonic resource's fields in every job's run config and offers no
way to close them while showing them in the Resources tab, so ``ArchiveResource`` checks
when the run starts, before any op: a run config that sets any resource's config is
refused, and so is a store resource's value that differs from the one ``Settings`` read
(a variable changed after the code location loaded). The archive's own copies of the two
resources are bound when the location loads, so an override would not reach them anyway.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableResource, DagsterRun, EnvVar, InitResourceContext
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from audit_archive.archive import due
from audit_archive.defs.names import (
    ARCHIVE_JOB,
    COLD_ARCHIVE_ASSET,
    FIRST_STEP,
    PARTITION_TAG,
    STEPS,
)
from audit_archive.environment import env_text
from audit_archive.errors import AuditArchiveError, ConfigError
from audit_archive.settings import DEFAULTS, DefinitionSettings, Settings
from audit_archive.stores.clients import Stores, open_stores

# Resource keys in ``defs`` (the Resources tab lists them under these names).
COLD_STORAGE_KEY = "cold_storage"
HOT_STORE_KEY = "hot_store"
ARCHIVE_KEY = "archive"
IO_MANAGER_KEY = "io_manager"  # Dagster's key for the ops' default IO manager


class MongoResource(ConfigurableResource):
    """The hot MongoDB (events to archive, batch records, leases), shown in the Resources
    tab: the URI names the database (SPEC section 5) and may carry a password, so it is
    bound with EnvVar. The archive's client is opened from ``Settings``
    (stores/clients.py), whose values these fields must agree with (ArchiveResource)."""

    uri: str = Field(description="MONGODB_URI: the hot store; database from the path.")
    events_collection: str = Field(description="AUDIT_EVENTS_COLLECTION: the hot events.")
    batches_collection: str = Field(description="AUDIT_BATCHES_COLLECTION: batch records.")


def _bound(variable: str, env: Mapping[str, str]) -> Any:
    """EnvVar(variable) when it is set (read again when each run starts), else the
    SPEC default (None where the SPEC's default is "none"): also when the value is in a
    file (``X_FILE``), which only ``Settings`` reads."""
    if (env.get(variable) or "").strip():
        return EnvVar(variable)
    return DEFAULTS[variable] or None


def cold_storage(env: Mapping[str, str] | None = None) -> S3Resource:
    """Cold storage as Dagster's own S3 resource. Path-style addressing where an endpoint
    is set (MinIO, Hetzner) comes with the archive's client (stores/clients.py), which
    also sets the timeouts and checksum behaviour the archive relies on."""
    env = os.environ if env is None else env
    return S3Resource(
        endpoint_url=_bound("AUDIT_COLD_ENDPOINT", env),
        region_name=_bound("AUDIT_COLD_REGION", env),
        aws_access_key_id=_bound("AUDIT_COLD_ACCESS_KEY", env),
        aws_secret_access_key=_bound("AUDIT_COLD_SECRET_KEY", env),
    )


def hot_store(env: Mapping[str, str] | None = None) -> MongoResource:
    env = os.environ if env is None else env
    return MongoResource(
        uri=_bound("MONGODB_URI", env),
        events_collection=_bound("AUDIT_EVENTS_COLLECTION", env),
        batches_collection=_bound("AUDIT_BATCHES_COLLECTION", env),
    )


# Settings' attribute for each variable (its declaration in settings.py).
_ATTRIBUTE = {field.alias: name for name, field in Settings.model_fields.items() if field.alias}


class ArchiveResource(ConfigurableResource):
    """Both tiers and the keys, validated and connected once per run. Everything comes
    from ``Settings``, read from the environment when the run starts (SPEC section 6),
    so every rule is checked in one place; the two store resources' values (what the
    Resources tab shows) must agree with it."""

    hot_store: MongoResource
    cold_storage: S3Resource

    _stores: Stores | None = PrivateAttr(default=None)

    def held(self) -> dict[str, str | None]:
        """The values the two store resources hold, by the variable each is bound to."""
        hot, cold = self.hot_store, self.cold_storage
        return {
            "MONGODB_URI": hot.uri,
            "AUDIT_EVENTS_COLLECTION": hot.events_collection,
            "AUDIT_BATCHES_COLLECTION": hot.batches_collection,
            "AUDIT_COLD_ENDPOINT": cold.endpoint_url,
            "AUDIT_COLD_REGION": cold.region_name,
            "AUDIT_COLD_ACCESS_KEY": cold.aws_access_key_id,
            "AUDIT_COLD_SECRET_KEY": cold.aws_secret_access_key,
        }

    def settings(self) -> Settings:
        """Settings from the environment when the run starts. A value the resources hold
        that differs from the environment's is refused, naming the variable (never the
        value); one that is only the SPEC default (the variable was unset when the
        location loaded, so nothing bound it) gives way to the environment."""
        settings = Settings.from_env()
        for variable, value in self.held().items():
            held = (value or "").strip()
            if not held or held == DEFAULTS[variable]:  # unbound: the SPEC default
                continue
            if held != env_text(getattr(settings, _ATTRIBUTE[variable])):
                raise ConfigError(
                    variable,
                    "the run's resource configuration differs from the environment's. "
                    "The stores are chosen by the code location's environment only: "
                    "reload the code location after changing a variable.",
                )
        return settings

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Errors here fail the run before any op starts, naming the variable.
        run = context.dagster_run
        if run is not None:
            refuse_resource_run_config(run.run_config)
            if archives_a_day(run):
                refuse_day_not_due(run.tags.get(PARTITION_TAG))
                refuse_partial_reexecution(run)
        self._stores = open_stores(self.settings())

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = None

    @property
    def stores(self) -> Stores:
        if self._stores is None:  # used outside a run (sensors, tests): connect lazily
            self._stores = open_stores(self.settings())
        return self._stores


class ResourceRunConfigRefused(ConfigError):
    """A run config tried to set a resource's configuration."""


def refuse_resource_run_config(run_config: Mapping[str, Any] | None) -> None:
    """Refuse a run whose run config sets any resource's config (Launchpad, API, CLI)."""
    resources = (run_config or {}).get("resources") or {}
    set_keys = sorted(k for k, v in resources.items() if isinstance(v, Mapping) and v.get("config"))
    if set_keys:
        shown = ", ".join(f"resources.{key}.config" for key in set_keys)
        raise ResourceRunConfigRefused(
            "run config",
            f"this run sets {shown}, and was refused before any op ran: the archive's "
            "stores and keys are chosen by the code location's environment only (the "
            "SPEC's variables), never per run. Remove the resources section and launch "
            "again.",
        )


class RunRefused(AuditArchiveError):
    """A run of the archive that would not archive its day as the day must be archived:
    refused when it starts, before any op, with the click that works instead."""


def archives_a_day(run: DagsterRun) -> bool:
    """A run of audit_archive_job or of Dagster's asset job materializing cold_archive
    (the asset page, an asset backfill, ``dagster asset materialize``)."""
    return run.job_name == ARCHIVE_JOB or COLD_ARCHIVE_ASSET in (run.asset_selection or ())


def refuse_day_not_due(partition_key: str | None, now: dt.datetime | None = None) -> None:
    """A day that is not a partition (not due yet, before ARCHIVE_START_DATE, not a day)
    asked for with a partition tag (GraphQL, the API, ``dagster job execute --tags``)
    gets no run: Dagster checks the key only where it picks it from the partitions.
    Without a day the first op says how to pick one."""
    if partition_key is None:
        return
    shape = DefinitionSettings.from_env()  # what the code location loaded in this run
    why = due.refusal(
        partition_key, shape.start_date, shape.retention_days, now or dt.datetime.now(dt.UTC)
    )
    if why is not None:
        raise RunRefused(why)


REEXECUTE_WHOLE = (
    "this run starts at {steps} and would reuse the outputs, staging files and lease "
    "owner of run {parent}, so it was refused before any op ran; nothing was changed. A "
    "day is always archived by all six steps of one run, and a new whole run converges "
    "from wherever the earlier one stopped: on the run's page open the Re-execute menu "
    'and pick "All steps in root run" (the button reads "Re-execute all (*)"), or '
    "Materialize the day again (Assets -> cold_archive -> Materialize)."
)


def refuse_partial_reexecution(run: DagsterRun) -> None:
    """A run that skips extract_chained (Re-execute from failure or from a chosen step
    after extract_chained succeeded) would carry the parent run's staged files and lease
    owner: refused. One that includes it (the failure was in extract_chained, or All
    steps) takes the lease itself and re-stages everything: allowed, and it converges."""
    steps = run.step_keys_to_execute
    if steps is None or any(key.split(".")[-1] == FIRST_STEP for key in steps):
        return
    names = {key.split(".")[-1] for key in steps}
    shown = ", ".join(n for n in STEPS if n in names) or "no step"
    raise RunRefused(
        REEXECUTE_WHOLE.format(steps=shown, parent=run.parent_run_id or "an earlier run")
    )


def resources(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The top-level resources of ``defs``: the archive's copies of the two stores are
    the same objects, so the Resources tab shows the archive using them."""
    hot, cold = hot_store(env), cold_storage(env)
    return {
        HOT_STORE_KEY: hot,
        COLD_STORAGE_KEY: cold,
        ARCHIVE_KEY: ArchiveResource(hot_store=hot, cold_storage=cold),
        # Dagster's default (file) IO manager stays: with mem_io_manager, Dagster itself
        # refuses a re-execution from a later step with its own advice (set a persistent
        # IO manager) before the archive can say which click works (docs/dagster.md),
        # and the ~11 events it saves per run are below the noise (docs/performance.md).
    }

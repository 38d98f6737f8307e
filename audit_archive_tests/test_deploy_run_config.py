"""Nobody at the UI can redirect the events (issue #16, item 7).

A run that could point the job at another S3 endpoint (or bucket, or MongoDB) would upload
a day there and then purge it from hot. The stores are chosen by the code location's
environment only: the jobs' run-config schemas must expose no field that selects a store,
at any depth, and a run config that sets any resource's config must be rejected. This
reads the schema the Launchpad reads (``job.run_config_schema``), whatever the resources
are built from (the archive's own classes today, dagster_aws's S3Resource and a Mongo
resource after issue #13): a resource whose fields reach run config fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from dagster import ConfigurableResource
from dagster._config import ConfigTypeKind, validate_config

# Field names that would choose where events are read from, written to or deleted from,
# or with which credentials (dagster_aws's S3Resource: endpoint_url, region_name,
# aws_access_key_id, aws_secret_access_key, aws_session_token, profile_name, ...).
STORE_FIELD = re.compile(
    r"endpoint|ur[il]$|^ur[il]|bucket|region|prefix|access_?key|secret|session_token|"
    r"password|profile_name|credential|connection|mongo|database|collection|host",
    re.IGNORECASE,
)
JOBS = ("audit_archive_job", "audit_verify_job", "audit_restore_job")
# What a run config may hold for each job's ops (the UI's legitimate knobs).
OP_CONFIG = {
    "audit_archive_job": {},
    "audit_verify_job": {"verify_archive": {"from_day", "to_day", "deep"}},
    "audit_restore_job": {"restore_day": {"into"}},
}
# Dagster's default IO manager takes `Any` config (its optional base_dir). It stores the
# ops' small outputs on the run's own filesystem and never sees a store's address; it is
# the one resource whose config the schema cannot close (Dagster gives resources without
# a schema `Any`). The test below pins it to Dagster's default so a replacement (an S3
# pickle IO manager, say) is checked like any other resource.
DAGSTER_DEFAULT_IO_MANAGER = "io_manager"


def fields(config_type, path: str = "") -> Iterator[tuple[str, object]]:
    """Every (dotted path, config type) in a config schema, at any depth, through
    shapes, selectors, arrays, noneables and scalar unions."""
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        child = f"{path}.{name}" if path else name
        yield child, field.config_type
        yield from fields(field.config_type, child)
    for inner in ("inner_type", "scalar_type", "non_scalar_type"):
        if hasattr(config_type, inner):
            yield from fields(getattr(config_type, inner), path)


class _S3Like(ConfigurableResource):
    """A store resource bound the way issue #13's rework may bind one (module level: Dagster
    resolves the op's annotation by name)."""

    endpoint_url: str | None = None
    bucket: str = "b"


@pytest.fixture(scope="module")
def defs():
    from audit_archive.definitions import defs

    return defs


@pytest.mark.parametrize("job_name", JOBS)
def test_no_run_config_field_selects_a_store(defs, job_name: str) -> None:
    schema = defs.resolve_job_def(job_name).run_config_schema.config_type
    found = list(fields(schema))
    assert len(found) > 5, "the walk reached into the schema"
    offending = [path for path, _ in found if STORE_FIELD.search(path.rsplit(".", 1)[-1])]
    assert not offending, f"{job_name}: the Launchpad could set {offending}"


@pytest.mark.parametrize("job_name", JOBS)
def test_resources_take_no_run_config(defs, job_name: str) -> None:
    job = defs.resolve_job_def(job_name)
    schema = job.run_config_schema.config_type
    resources = schema.fields["resources"].config_type.fields
    assert "archive" in resources or len(resources) > 1, "the stores' resources are here"
    for key, field in resources.items():
        config = field.config_type.fields["config"].config_type
        if key == DAGSTER_DEFAULT_IO_MANAGER:
            assert config.kind == ConfigTypeKind.ANY  # see test_the_io_manager_is_dagsters
            continue
        assert config.kind in (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE)
        assert not config.fields, f"resources.{key}.config has {sorted(config.fields)}"
        for attempt in (
            {"endpoint": "http://elsewhere:9000"},
            {"endpoint_url": "http://elsewhere:9000"},
            {"uri": "mongodb://elsewhere/db"},
            {"s3": {"bucket": "elsewhere"}},
        ):
            run_config = {"resources": {key: {"config": attempt}}}
            result = validate_config(schema, run_config)
            assert not result.success, f"{job_name} accepted {run_config}"


def test_the_io_manager_is_dagsters_default(defs) -> None:
    from dagster._core.definitions.job_definition import default_job_io_manager

    assert DAGSTER_DEFAULT_IO_MANAGER not in (defs.resources or {}), "not bound by the project"
    for job_name in JOBS:
        io_manager = defs.resolve_job_def(job_name).resource_defs[DAGSTER_DEFAULT_IO_MANAGER]
        assert io_manager is default_job_io_manager


def test_the_walk_would_find_a_store_field() -> None:
    # The checks above fail for a resource that exposes its fields, as a Pythonic
    # resource bound at the top level does (the shape issue #13's rework will have).
    from dagster import Definitions, job, op

    @op
    def uses(s3: _S3Like) -> None:
        pass

    @job
    def probe() -> None:
        uses()

    schema = (
        Definitions(jobs=[probe], resources={"s3": _S3Like(bucket="dezky-audit")})
        .resolve_job_def("probe")
        .run_config_schema.config_type
    )
    names = {path for path, _ in fields(schema)}
    assert {"resources.s3.config.endpoint_url", "resources.s3.config.bucket"} <= names
    assert validate_config(schema, {"resources": {"s3": {"config": {"bucket": "x"}}}}).success


@pytest.mark.parametrize("job_name", JOBS)
def test_ops_take_only_their_documented_config(defs, job_name: str) -> None:
    schema = defs.resolve_job_def(job_name).run_config_schema.config_type
    for op_name, field in schema.fields["ops"].config_type.fields.items():
        config = field.config_type.fields.get("config")
        names = set(getattr(config.config_type, "fields", {}) or {}) if config else set()
        assert names == OP_CONFIG[job_name].get(op_name, set()), f"{job_name}.{op_name}"

"""Nobody at the UI can redirect the events (issue #16, item 7).

A run that could point the job at another S3 endpoint (or bucket, or MongoDB) would upload
a day there and then purge it from hot. The stores are chosen by the code location's
environment only. Since issue #13 the stores are top-level Pythonic resources
(``cold_storage``: dagster_aws's S3Resource, ``hot_store``: MongoDB) so the Resources tab
shows their configuration; Dagster puts every top-level Pythonic resource's fields in
every job's run-config schema and offers no way to close them, so: no op and no other
resource exposes a field that selects a store (read from the schema the Launchpad reads,
``job.run_config_schema``), and a run whose run config sets any resource's config is
refused when it starts, before any op, for every job and for the asset page's
materializations (Dagster's implicit asset job).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from dagster import ConfigurableResource, DagsterInvalidConfigError
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
# The top-level store resources whose fields Dagster shows in every run-config schema;
# a run that sets them is refused at start (test_a_run_that_sets_a_resource_is_refused).
STORE_RESOURCES = ("cold_storage", "hot_store")
# What a run config may hold for each job's ops (the UI's legitimate knobs).
OP_CONFIG = {
    "audit_archive_job": {},
    "audit_verify_job": {"verify_archive": {"from_day", "to_day", "deep"}},
    "audit_restore_job": {"restore_day": {"into"}},
}
# The ops' IO manager: Dagster's in-memory one (every job runs in process; issue 24), which
# takes no config and never sees a store's address. The test below pins it so a
# replacement (an S3 pickle IO manager, say) is checked like any other resource.
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


def _all_jobs(defs) -> list[tuple[str, object]]:
    jobs = [(name, defs.resolve_job_def(name)) for name in JOBS]
    return [*jobs, ("__ASSET_JOB", defs.resolve_implicit_global_asset_job_def())]


@pytest.mark.parametrize("job_name", [*JOBS, "__ASSET_JOB"])
def test_no_run_config_field_selects_a_store_outside_the_store_resources(
    defs, job_name: str
) -> None:
    job = dict(_all_jobs(defs))[job_name]
    found = list(fields(job.run_config_schema.config_type))
    assert len(found) > 5, "the walk reached into the schema"
    offending = [
        path
        for path, _ in found
        if STORE_FIELD.search(path.rsplit(".", 1)[-1])
        and not any(path.startswith(f"resources.{key}.") for key in STORE_RESOURCES)
    ]
    assert not offending, f"{job_name}: the Launchpad could set {offending}"


@pytest.mark.parametrize("job_name", [*JOBS, "__ASSET_JOB"])
def test_only_the_store_resources_take_run_config(defs, job_name: str) -> None:
    job = dict(_all_jobs(defs))[job_name]
    resources = job.run_config_schema.config_type.fields["resources"].config_type.fields
    assert set(STORE_RESOURCES) <= set(resources), "the stores' resources are here"
    for key, field in resources.items():
        config = field.config_type.fields["config"].config_type
        if key == DAGSTER_DEFAULT_IO_MANAGER:
            names = set(getattr(config, "fields", None) or {})
            assert config.kind == ConfigTypeKind.ANY or names == {"base_dir"}
            continue
        if key in STORE_RESOURCES:
            continue
        assert config.kind in (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE)
        assert not config.fields, f"resources.{key}.config has {sorted(config.fields)}"


ATTEMPTS = [
    ("cold_storage", {"endpoint_url": "http://elsewhere:9000"}),
    ("cold_storage", {"aws_access_key_id": "x", "aws_secret_access_key": "y"}),
    ("hot_store", {"uri": "mongodb://elsewhere/db"}),
    ("hot_store", {"events_collection": "elsewhere"}),
    (
        "hot_store",
        {"uri": "mongodb://elsewhere/db", "events_collection": "e", "batches_collection": "b"},
    ),
]


@pytest.mark.parametrize("job_name", [*JOBS, "__ASSET_JOB"])
@pytest.mark.parametrize(("key", "attempt"), ATTEMPTS)
def test_a_run_that_sets_a_resource_is_refused(
    defs, job_name: str, key: str, attempt: dict
) -> None:
    job = dict(_all_jobs(defs))[job_name]
    run_config = {"resources": {key: {"config": attempt}}}
    kwargs: dict = {"partition_key": "2024-01-01"} if job.partitions_def else {}
    if job_name == "audit_restore_job":
        kwargs["run_config"] = {**run_config, "ops": {"restore_day": {"config": {}}}}
    else:
        kwargs["run_config"] = run_config
    try:
        result = job.execute_in_process(raise_on_error=False, **kwargs)
    except DagsterInvalidConfigError as e:
        # A partial config leaves the resource's required fields unset: Dagster refuses
        # it before launch. A complete one reaches the run and is refused below.
        assert f"root:resources:{key}:config" in str(e)
        return
    assert not result.success
    started = [e for e in result.all_events if e.event_type_value == "STEP_START"]
    assert not started, "no op ran"
    text = "".join(
        str(getattr(e.event_specific_data, "error", "") or "") for e in result.all_events
    )
    assert f"resources.{key}.config" in text and "environment only" in text, text


def test_a_resolved_config_that_differs_from_the_environment_is_refused(monkeypatch) -> None:
    from dagster_aws.s3 import S3Resource

    from audit_archive.defs.resources import ArchiveResource, MongoResource
    from audit_archive.errors import ConfigError

    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:27017/dezky")
    monkeypatch.setenv("AUDIT_COLD_ENDPOINT", "http://127.0.0.1:9000")
    monkeypatch.setenv("AUDIT_COLD_REGION", "us-east-1")
    monkeypatch.setenv("AUDIT_COLD_ACCESS_KEY", "k")
    monkeypatch.setenv("AUDIT_COLD_SECRET_KEY", "s")

    def archive(endpoint: str, secret: str = "s") -> ArchiveResource:
        return ArchiveResource(
            hot_store=MongoResource(
                uri="mongodb://127.0.0.1:27017/dezky",
                events_collection="auditevents",
                batches_collection="archivebatches",
            ),
            cold_storage=S3Resource(
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="k",
                aws_secret_access_key=secret,
            ),
        )

    assert archive("http://127.0.0.1:9000").settings().cold_endpoint == "http://127.0.0.1:9000"
    # Resolved values (what a run's resources hold) that the environment contradicts are
    # refused, naming the variable and never echoing a secret.
    with pytest.raises(ConfigError, match="AUDIT_COLD_ENDPOINT: the run's resource"):
        archive("http://elsewhere:9000").settings()
    with pytest.raises(ConfigError, match="AUDIT_COLD_SECRET_KEY") as refused:
        archive("http://127.0.0.1:9000", secret="other-secret").settings()
    assert "other-secret" not in str(refused.value)


def test_the_io_manager_keeps_reexecution_ours_to_refuse(defs) -> None:
    """No job hands the ops' outputs over in memory: with mem_io_manager Dagster refuses a
    re-execution from a later step with its own advice, before the archive's run-start
    check can name the click that works (test_reexecution.py proves the message)."""
    from dagster import mem_io_manager

    assert defs.resources.get(DAGSTER_DEFAULT_IO_MANAGER) is not mem_io_manager
    for _, job in _all_jobs(defs):
        assert job.resource_defs[DAGSTER_DEFAULT_IO_MANAGER] is not mem_io_manager


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


def test_a_variable_unset_when_the_location_loaded_is_read_when_the_run_starts(
    monkeypatch,
) -> None:
    # SPEC section 6: one process runs against whatever its environment says at run start.
    # A resource that only holds the SPEC default (nothing bound it) gives way.
    from audit_archive.defs.resources import ArchiveResource, cold_storage, hot_store

    unbound = {"AUDIT_COLD_REGION": "", "MONGODB_URI": ""}
    archive = ArchiveResource(hot_store=hot_store(unbound), cold_storage=cold_storage(unbound))
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:27017/later")
    monkeypatch.setenv("AUDIT_COLD_ENDPOINT", "http://127.0.0.1:9000")
    settings = archive.settings()
    assert (settings.database, settings.cold_endpoint) == ("later", "http://127.0.0.1:9000")

"""docker-compose.yml, .env.example, deploy/ and the Dockerfile agree with each other, with
the SPEC's variables and with the README. Docker is not available here, so this reads the
files the way `docker compose` would: services, healthchecks, start order, variables."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from audit_archive.settings import (
    DEFAULTS,
    SECRET_VARIABLES,
    SPEC_VARIABLES,
    DefinitionSettings,
    Settings,
)

REPO = Path(__file__).resolve().parents[1]
CODE = "audit_archive_code"
DAGSTER_SERVICES = (CODE, "dagster_webserver", "dagster_daemon")
PASSWORDS = ("MONGO_INITDB_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD", "DAGSTER_POSTGRES_PASSWORD")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    out = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            assert name not in out, f"{name} is set twice in .env.example"
            out[name.strip()] = value
    return out


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What `docker compose` makes of a value given .env (``$$`` is a literal ``$``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        current = env.get(name)
        if (op in (":-", ":?") and not current) or (op in ("-", "?") and current is None):
            if op.endswith("?"):
                raise AssertionError(f"compose would stop: {arg}")
            return arg or ""
        return current or ""

    parts = value.split("$$")
    return "$".join(_INTERPOLATION.sub(one, part) for part in parts)


def used_variables() -> set[str]:
    text = (REPO / "docker-compose.yml").read_text().replace("$$", "")
    return {m[0] for m in _INTERPOLATION.findall(text)}


def readme_config_variables() -> set[str]:
    """The variables in the README's Configuration tables (first column)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so it can be checked"
    return env


# -- services, health and start order --------------------------------------------------------


def test_compose_has_the_services_of_a_production_deployment(services) -> None:
    assert set(services) == {
        "mongo",
        "minio",
        "bucket-init",
        "postgres",
        CODE,
        "dagster_webserver",
        "dagster_daemon",
    }
    assert services[CODE]["build"]["dockerfile"] == "Dockerfile"
    images = {services[name]["image"] for name in DAGSTER_SERVICES}
    assert len(images) == 1, "code location, webserver and daemon run the same image"


@pytest.mark.parametrize(
    "name", ["mongo", "minio", "postgres", CODE, "dagster_webserver", "dagster_daemon"]
)
def test_every_long_running_service_has_a_healthcheck_and_restarts(services, name: str) -> None:
    service = services[name]
    check = service["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert check["retries"] >= 3
    assert service["restart"] == "unless-stopped"


def test_mongo_healthcheck_waits_for_a_writable_primary_of_its_replica_set(services) -> None:
    mongo = services["mongo"]
    check = " ".join(mongo["healthcheck"]["test"][1:])
    assert "rs.initiate" in check and "isWritablePrimary" in check
    assert "--replSet" in mongo["command"] and "--keyFile" in mongo["command"]


def test_services_start_once_what_they_need_is_ready(services) -> None:
    def needs(name: str) -> dict[str, str]:
        return {dep: cond["condition"] for dep, cond in services[name]["depends_on"].items()}

    assert needs("bucket-init") == {"minio": "service_healthy"}
    assert needs(CODE) == {
        "postgres": "service_healthy",
        "mongo": "service_healthy",
        "bucket-init": "service_completed_successfully",
    }
    for name in ("dagster_webserver", "dagster_daemon"):
        assert needs(name) == {"postgres": "service_healthy", CODE: "service_healthy"}
    assert services["bucket-init"]["restart"] == "no", "a one-shot job"


def test_the_webserver_is_published_on_loopback_only(services, example) -> None:
    [port] = interpolate(services["dagster_webserver"]["ports"], example)
    assert port == f"127.0.0.1:{example['DAGSTER_WEBSERVER_PORT']}:3000"
    for name, service in services.items():
        if name != "dagster_webserver":
            assert "ports" not in service, f"{name} is reachable inside the compose network only"


# -- variables -------------------------------------------------------------------------------


def test_env_example_names_every_spec_readme_and_settings_variable(example) -> None:
    assert set(SPEC_VARIABLES) <= set(example)
    assert readme_config_variables() <= set(example)
    assert set(DEFAULTS) <= set(example), "every variable the archive reads"
    assert set(SPEC_VARIABLES) <= readme_config_variables(), "README documents the SPEC's"


def test_every_variable_compose_interpolates_is_in_env_example(compose, example) -> None:
    assert used_variables() <= set(example)
    # And the example (once its secrets are filled in) is all `docker compose` needs.
    filled = {**example, "AUDIT_SIGNING_KEY": "s" * 32}
    interpolate(compose, filled)
    with pytest.raises(AssertionError, match="AUDIT_SIGNING_KEY"):
        interpolate(compose, example)  # the signing key has no default: compose refuses


def test_the_code_location_gets_every_archive_variable_and_only_it_gets_secrets(
    services,
) -> None:
    code_env = environment(services[CODE])
    assert set(DEFAULTS) <= set(code_env)
    for name in ("dagster_webserver", "dagster_daemon", "postgres", "mongo", "minio"):
        env = environment(services[name])
        leaked = set(env) & {*SECRET_VARIABLES, "MONGODB_URI"}
        assert not leaked, f"{name} does not need {leaked}"


def test_env_example_is_valid_once_the_signing_key_is_set_and_holds_no_secrets(
    services, example
) -> None:
    env = interpolate(environment(services[CODE]), {**example, "AUDIT_SIGNING_KEY": "k" * 32})
    settings = Settings.from_env(env)
    DefinitionSettings.from_env(env)
    assert settings.database == "dezky" and settings.cold_bucket == example["AUDIT_COLD_BUCKET"]
    assert example["AUDIT_SIGNING_KEY"] == "", "no usable key in the example: set your own"
    for name in ("AUDIT_COLD_SECRET_KEY", *PASSWORDS):
        assert example[name].startswith("change-me"), f"{name} is a placeholder"
    assert len(example["AUDIT_COLD_SECRET_KEY"]) >= 8, "MinIO's minimum secret length"


def test_mongodb_uri_points_at_the_mongo_service_with_its_credentials(example) -> None:
    uri = urlsplit(example["MONGODB_URI"])
    assert (uri.hostname, uri.port) == ("mongo", 27017)
    assert uri.username == example["MONGO_INITDB_ROOT_USERNAME"]
    assert uri.password == example["MONGO_INITDB_ROOT_PASSWORD"]
    query = parse_qs(uri.query)
    assert query["authSource"] == ["admin"]
    assert query["replicaSet"] == ["rs0"], "the replica set the healthcheck initiates"


def test_cold_storage_is_the_minio_service_and_bucket_init_makes_the_bucket(
    services, example
) -> None:
    assert urlsplit(example["AUDIT_COLD_ENDPOINT"]).netloc == "minio:9000"
    init = services["bucket-init"]
    script = "\n".join(init["command"])
    assert 'mc mb --ignore-existing $$LOCK "local/$$AUDIT_COLD_BUCKET"' in script
    init_env = interpolate(environment(init), example)
    assert init_env["AUDIT_COLD_BUCKET"] == example["AUDIT_COLD_BUCKET"]
    assert init_env["AUDIT_COLD_ACCESS_KEY"] == example["AUDIT_COLD_ACCESS_KEY"]
    # The archive's MinIO user may write and read but not delete (the archive never does).
    actions = re.findall(r'"(s3:[A-Za-z]+)"', script)
    assert "s3:PutObject" in actions and "s3:GetObject" in actions
    assert not [a for a in actions if "Delete" in a]


# -- Dagster's instance and workspace --------------------------------------------------------


def test_deploy_dagster_yaml_is_valid_with_postgres_storage_and_the_local_run_queue(
    tmp_path: Path, services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    for name in ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_USER"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", "y")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on any schema error
    assert set(config["storage"]) == {"postgres"}

    production = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert production["concurrency"] == local["concurrency"], "the same per-day limit and cap"
    assert production["storage"]["postgres"]["postgres_db"]["hostname"] == {
        "env": "DAGSTER_POSTGRES_HOST"
    }
    needed = {
        v["env"]
        for v in production["storage"]["postgres"]["postgres_db"].values()
        if isinstance(v, dict)
    }
    for name in DAGSTER_SERVICES:
        assert needed <= set(environment(services[name])), f"{name} reaches Dagster's storage"
    assert environment(services[CODE])["DAGSTER_POSTGRES_HOST"] == "postgres"


def test_webserver_and_daemon_load_the_code_location_the_code_service_serves(services) -> None:
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    grpc = entry["grpc_server"]
    command = services[CODE]["command"]

    def flag(name: str) -> str:
        return command[command.index(name) + 1]

    assert grpc["host"] == CODE
    assert str(grpc["port"]) == flag("--port")
    assert grpc["location_name"] == flag("--location-name") == "audit_archive"
    # SPEC section 6: the code location is audit_archive.definitions:defs.
    assert (flag("--module-name"), flag("--attribute")) == ("audit_archive.definitions", "defs")
    for name in ("dagster_webserver", "dagster_daemon"):
        assert "/opt/dagster/home/workspace.yaml" in services[name]["command"]


def test_the_image_installs_the_deploy_extra_with_dagsters_config_in_dagster_home() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'pip install ".[deploy]"' in dockerfile
    assert "ENV" in dockerfile and "DAGSTER_HOME=/opt/dagster/home" in dockerfile
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/" in dockerfile
    assert "USER dagster" in dockerfile
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deploy = project["optional-dependencies"]["deploy"]
    aws = next(d for d in project["dependencies"] if d.startswith("dagster-aws=="))
    assert f"dagster-postgres=={aws.split('==')[1]}" in deploy, "one Dagster release line"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".demo", ".env", ".git"} <= set(ignored)

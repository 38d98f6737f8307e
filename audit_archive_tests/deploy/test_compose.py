"""docker-compose.yml, .env.example, deploy/ and the Dockerfile agree with each other, with
the SPEC's variables and with the settings. Docker is not available here, so this reads
the files the way `docker compose` would (audit_archive_tests/support/deploy_files.py): services,
profiles, health checks, start order, variables, Dagster's instance."""

from __future__ import annotations

import re
import shutil
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from audit_archive.settings import (
    DEFAULTS,
    FILE_VARIABLES,
    SECRET_VARIABLES,
    SPEC_VARIABLES,
    DefinitionSettings,
    Settings,
)
from audit_archive_tests.support.deploy_files import (
    CODE,
    DAGSTER_SERVICES,
    REPO,
    active_services,
    compose_file,
    env_example,
    filled_example,
    interpolate,
    mongodb_uri_template,
    readme_variables,
    secret_names,
    used_variables,
    with_secret_files,
)

OPTIONAL = {"mongo": {"mongo"}, "minio": {"minio", "bucket-init"}, "witness": {"witness"}}
PROFILE_SETS = [set(), {"mongo"}, {"minio"}, {"mongo", "minio"}]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_file()


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return env_example()


def readme_config_variables() -> set[str]:
    """The variables in the README's Configuration tables (first column)."""
    return set(readme_variables())


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping, so it can be checked"
    return env


def script_of(service: dict[str, Any]) -> str:
    """The shell script a service runs (entrypoint `sh -c` + command, or bash -c)."""
    parts = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    return parts[parts.index("-c") + 1]


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
        "witness",
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


def _seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)(s|m)", value)
    assert m, f"{value}: write health check durations in s or m"
    return int(m[1]) * (60 if m[2] == "m" else 1)


@pytest.mark.parametrize(
    "name", ["mongo", "minio", "postgres", CODE, "dagster_webserver", "dagster_daemon"]
)
def test_health_checks_are_cheap(services, name: str) -> None:
    check = services[name]["healthcheck"]
    # They run for the life of the container: at most one every 30 s once it is up (a
    # short start_interval only while it starts), and none imports Dagster's CLI but the
    # daemon's, which has no cheaper equivalent and runs once a minute.
    assert _seconds(check["interval"]) >= 30
    assert _seconds(check.get("start_interval", check["interval"])) <= _seconds(check["interval"])
    command = " ".join(check["test"][1:])
    assert "dagster api" not in command, "deploy/healthcheck.py asks the same, without Dagster"
    if "dagster-daemon" in command:
        assert _seconds(check["interval"]) >= 60


def test_mongo_healthcheck_waits_for_a_writable_primary_of_its_replica_set(services) -> None:
    mongo = services["mongo"]
    check = " ".join(mongo["healthcheck"]["test"][1:])
    assert "rs.initiate" in check and "isWritablePrimary" in check
    assert "--replSet" in mongo["command"] and "--keyFile" in mongo["command"]


def test_postgres_health_is_tested_over_tcp(services) -> None:
    # During initialisation the image runs a temporary server on the Unix socket only; a
    # socket check calls that ready and the Dagster containers fail to connect.
    [check] = services["postgres"]["healthcheck"]["test"][1:]
    assert check.startswith("pg_isready ") and "-h 127.0.0.1" in check and "-p 5432" in check


def test_services_start_once_what_they_need_is_ready(services) -> None:
    def needs(name: str) -> dict[str, tuple[str, bool]]:
        return {
            dep: (cond["condition"], cond.get("required", True))
            for dep, cond in services[name]["depends_on"].items()
        }

    assert needs("bucket-init") == {"minio": ("service_healthy", True)}
    assert needs(CODE) == {
        "postgres": ("service_healthy", True),
        "mongo": ("service_healthy", False),
        "bucket-init": ("service_completed_successfully", False),
    }
    for name in ("dagster_webserver", "dagster_daemon"):
        assert needs(name) == {
            "postgres": ("service_healthy", True),
            CODE: ("service_healthy", True),
        }
    assert services["bucket-init"]["restart"] == "no", "a one-shot job"


def test_the_webserver_is_published_on_loopback_only(services, example) -> None:
    [port] = interpolate(services["dagster_webserver"]["ports"], example)
    assert port == f"127.0.0.1:{example['DAGSTER_WEBSERVER_PORT']}:3000"
    for name, service in services.items():
        if name != "dagster_webserver":
            assert "ports" not in service, f"{name} is reachable inside the compose network only"


# -- an existing MongoDB or S3: profiles -------------------------------------------------------


def test_the_bundled_mongodb_and_minio_are_optional_profiles(services, example) -> None:
    for profile, names in OPTIONAL.items():
        for name in names:
            assert services[name]["profiles"] == [profile]
    for name, service in services.items():
        if name not in set().union(*OPTIONAL.values()):
            assert "profiles" not in service, f"{name} always runs"
    # The example runs the whole stack but the witness (an auditor's, usually elsewhere);
    # docs/deployment.md says what to drop.
    assert set(example["COMPOSE_PROFILES"].split(",")) == set(OPTIONAL) - {"witness"}


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids=lambda p: ",".join(sorted(p)) or "none")
def test_compose_starts_with_or_without_the_bundled_stores(compose, profiles: set[str]) -> None:
    # What compose checks before it starts anything: every dependency of an active
    # service is active too, unless it is marked `required: false`.
    active = active_services(compose, profiles)
    for name, service in active.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in compose["services"], f"{name} depends on undefined {dep}"
            if dep not in active:
                assert cond.get("required") is False, (
                    f"with profiles {sorted(profiles)}, {name} needs {dep}, which does not run"
                )
    assert set(DAGSTER_SERVICES) | {"postgres"} <= set(active)
    # And interpolation (the whole file, active or not) needs no secret of a store that
    # is not bundled: optional services check their own secrets when they start.
    env = filled_example()
    for profile in set(OPTIONAL) - profiles:
        for name in OPTIONAL[profile]:
            for variable in environment(compose["services"][name]):
                if variable in secret_names():
                    env.pop(variable, None)
    interpolate(compose, env)


@pytest.mark.parametrize("name", ["mongo", "minio", "bucket-init"])
def test_optional_services_refuse_to_start_without_their_secrets(services, name: str) -> None:
    script = script_of(services[name])
    # The producing application's user is optional: created only when its password is set.
    optional = {"MONGO_WRITER_PASSWORD"}
    secrets = [v for v in environment(services[name]) if v in secret_names() - optional]
    assert secrets, f"{name} holds no secret?"
    for variable in secrets:
        # `${VAR:?}` cannot be used there (see above); the script checks instead.
        assert f'if [ -z "$${variable}" ]; then' in script, f"{name} checks {variable}"
        assert f"set {variable} in .env" in script
        assert ":?" not in str(environment(services[name])[variable])


# -- variables and secrets ---------------------------------------------------------------------


def test_env_example_names_every_spec_readme_and_settings_variable(example) -> None:
    assert set(SPEC_VARIABLES) <= set(example)
    assert readme_config_variables() <= set(example)
    assert set(DEFAULTS) <= set(example), "every variable the archive reads"
    assert set(SPEC_VARIABLES) <= readme_config_variables(), "README documents the SPEC's"


def test_every_secret_in_env_example_is_empty(example) -> None:
    marked = secret_names()
    # Everything that is a secret is marked so: the archive's own, every password, the
    # URI (it carries the archive user's password).
    must = {*SECRET_VARIABLES, "MONGODB_URI"}
    must |= {name for name in example if re.search(r"PASSWORD|SECRET", name)}
    assert must <= marked, f"mark these # SECRET: {sorted(must - marked)}"
    filled = {name: example[name] for name in marked if example[name] != ""}
    assert not filled, f"placeholders defeat the required-variable guards: {sorted(filled)}"


def test_every_variable_compose_interpolates_is_in_env_example(compose, example) -> None:
    assert used_variables() <= set(example)
    assert {s["environment"] for s in compose["secrets"].values()} <= set(example)
    interpolate(compose, filled_example())  # the example, secrets filled in: all it needs
    # With the example as it is, compose refuses to start, naming the secret.
    env = {**filled_example(), "DAGSTER_POSTGRES_PASSWORD": ""}
    with pytest.raises(AssertionError, match="DAGSTER_POSTGRES_PASSWORD"):
        interpolate(compose, env)


@pytest.mark.parametrize("variable", ["MONGODB_URI", "AUDIT_SIGNING_KEY"])
def test_the_code_location_refuses_to_start_without_its_required_secrets(
    compose, services, tmp_path, variable
) -> None:
    # Compose cannot require a variable it hands over as a secret file, so the
    # container's entrypoint checks the files: run it with /bin/sh on what compose mounts.
    import subprocess

    code = services[CODE]
    script = code["entrypoint"][2].replace("$$", "$")
    for value, status in (("", 1), ("x" * 40, 0)):
        env = {**filled_example(), variable: value}
        folder = tmp_path / f"{variable}{status}"
        folder.mkdir()
        with_secret_files(code, compose, env, folder)
        result = subprocess.run(
            ["/bin/sh", "-c", script.replace("/run/secrets", str(folder)), "sh", "true"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == status, result.stderr
        assert (f"set {variable} in .env" in result.stderr) == (status == 1)


def test_the_code_location_gets_every_archive_variable_and_only_it_gets_secrets(
    compose, services
) -> None:
    code_env = environment(services[CODE])
    for variable in DEFAULTS:
        # Each variable once: as itself, or (a secret) as the file that holds it.
        given = {variable, f"{variable}_FILE"} & set(code_env)
        assert len(given) == 1, f"{variable}: {sorted(given)}"
    given = interpolate(code_env, {**filled_example(), **dict.fromkeys(FILE_VARIABLES, "x")})
    for variable in FILE_VARIABLES:
        assert variable not in code_env, f"{variable} only as a secret file"
        name = given[f"{variable}_FILE"].removeprefix("/run/secrets/")
        # An empty secret leaves X_FILE empty (unset): the settings refuse an empty file.
        assert interpolate(code_env, {**filled_example(), variable: ""})[f"{variable}_FILE"] == ""
        assert name in services[CODE]["secrets"]
        assert compose["secrets"][name] == {"environment": variable}
    for name in ("dagster_webserver", "dagster_daemon", "postgres", "mongo", "minio"):
        env = environment(services[name])
        leaked = set(env) & {*SECRET_VARIABLES, "MONGODB_URI"}
        assert not leaked and not services[name].get("secrets"), f"{name} does not need {leaked}"


def test_env_example_once_its_secrets_are_set_is_valid(compose, services, tmp_path) -> None:
    example = filled_example()
    env = with_secret_files(services[CODE], compose, example, tmp_path)
    settings = Settings.from_env(env)
    assert settings.mongodb_uri == example["MONGODB_URI"], "read from its secret file"
    DefinitionSettings.from_env(env)
    assert settings.database == "dezky" and settings.cold_bucket == env["AUDIT_COLD_BUCKET"]


def test_the_archive_connects_to_mongodb_as_its_own_user_not_root(services, example) -> None:
    uri = urlsplit(mongodb_uri_template())
    assert (uri.hostname, uri.port) == ("mongo", 27017)
    assert (
        uri.username == example["MONGO_ARCHIVE_USERNAME"] != example["MONGO_INITDB_ROOT_USERNAME"]
    )
    assert uri.password == "<MONGO_ARCHIVE_PASSWORD>"
    database = uri.path.lstrip("/")
    assert database == example["MONGO_ARCHIVE_DATABASE"]
    query = parse_qs(uri.query)
    assert query["authSource"] == [database], "the user lives in the archive's database"
    assert query["replicaSet"] == ["rs0"], "the replica set the healthcheck initiates"
    # The mongo service creates that user on first start, from deploy/mongo.
    mongo = services["mongo"]
    assert "./deploy/mongo:/docker-entrypoint-initdb.d:ro" in mongo["volumes"]
    env = interpolate(environment(mongo), filled_example())
    assert env["MONGO_ARCHIVE_USERNAME"] == uri.username
    assert env["MONGO_ARCHIVE_DATABASE"] == database
    script = (REPO / "deploy" / "mongo" / "create-archive-user.js").read_text()
    for variable in ("MONGO_ARCHIVE_DATABASE", "MONGO_ARCHIVE_USERNAME", "MONGO_ARCHIVE_PASSWORD"):
        assert f'"{variable}"' in script and variable in env
    assert "createUser" in script and "archive-role.json" in script
    # The producing application's user, only when its password is set.
    assert 'if (env.MONGO_WRITER_PASSWORD) {\n  createRoleAndUser("writer-role.json"' in script
    assert {"MONGO_WRITER_USERNAME", "MONGO_WRITER_PASSWORD"} <= set(env)
    assert "root" not in re.sub(r"//.*", "", script), "the archive's user gets no built-in role"


def test_cold_storage_is_the_minio_service_and_bucket_init_is_idempotent(services, example) -> None:
    assert urlsplit(example["AUDIT_COLD_ENDPOINT"]).netloc == "minio:9000"
    init = services["bucket-init"]
    script = script_of(init)
    assert 'mc mb --ignore-existing $$LOCK "local/$$AUDIT_COLD_BUCKET"' in script
    init_env = interpolate(environment(init), filled_example())
    assert init_env["AUDIT_COLD_BUCKET"] == example["AUDIT_COLD_BUCKET"]
    # The user bucket-init creates is the one the archive signs in as (its secret file).
    assert init_env["AUDIT_COLD_ACCESS_KEY"] == filled_example()["AUDIT_COLD_ACCESS_KEY"]
    assert compose_file()["secrets"]["audit_cold_access_key"] == {
        "environment": "AUDIT_COLD_ACCESS_KEY"
    }
    assert script.startswith("set -e\n")
    lines = [line.strip() for line in script.splitlines()]
    # Re-attaching an attached policy fails by design: detach (allowed to fail) first,
    # then attach, which must succeed.
    detach = next(i for i, x in enumerate(lines) if x.startswith("mc admin policy detach"))
    attach = next(i for i, x in enumerate(lines) if x.startswith("mc admin policy attach"))
    assert detach < attach and lines[detach].endswith("|| true")
    assert "||" not in lines[attach], "a failed attach fails bucket-init"
    for i, line in enumerate(lines):
        if line.startswith("mc ") and i != detach:
            assert "||" not in line, f"only the detach may fail: {line}"
    assert any(x.startswith("mc admin policy create local audit-archive /") for x in lines)
    assert init["configs"] == [
        {"source": "audit-archive-policy", "target": "/audit-archive-policy.json"}
    ]


def test_the_bucket_is_versioned_by_default(services, example) -> None:
    init = services["bucket-init"]
    script = script_of(init)
    assert example["MINIO_BUCKET_VERSIONING"] == "on"
    assert interpolate(environment(init), {})["MINIO_BUCKET_VERSIONING"] == "on", "default on"
    condition = (
        'if [ -n "$$AUDIT_COLD_OBJECT_LOCK_MODE" ] || [ "$$MINIO_BUCKET_VERSIONING" != off ]; then'
    )
    assert condition in script
    after = script.split(condition, 1)[1].lstrip().splitlines()[0]
    assert after == 'mc version enable "local/$$AUDIT_COLD_BUCKET"'


# -- images ------------------------------------------------------------------------------------


def test_every_image_is_pinned_to_an_exact_release(services) -> None:
    exact = re.compile(
        r"^(?:[a-z0-9.-]+/)*[a-z0-9._-]+:"
        r"(?:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ|\d+\.\d+\.\d+(?:-[a-z]+)?|\d+\.\d+-[a-z]+)"
        r"(?:@sha256:[0-9a-f]{64})?$"  # a digest may follow (docs/deployment.md "Digests")
    )
    for name, service in services.items():
        image = service["image"]
        assert exact.match(image), f"{name}: {image} is not an exact release"
        assert not image.startswith(("minio/", "docker.io/minio/")), "gone from Docker Hub"
    dockerfile = (REPO / "Dockerfile").read_text()
    # Both stages (the wheel's, the image's) on the one base, so the wheel fits the image.
    [base] = set(re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base


def test_the_documented_mongodb_floor_is_the_installed_drivers() -> None:
    # pip installs the newest pymongo the range allows; its floor is the archive's.
    from pymongo import common

    floor = common.MIN_SUPPORTED_SERVER_VERSION
    docs = (REPO / "docs" / "deployment.md").read_text()
    assert f"the archive needs MongoDB {floor} or newer" in docs
    assert f"`pymongo.common.MIN_SUPPORTED_SERVER_VERSION` is `{floor}`" in docs
    stated = set(re.findall(r"MongoDB (\d+\.\d+) or newer", docs))
    assert stated == {floor}, f"one floor everywhere: {stated}"


def test_the_image_installs_dependencies_before_it_copies_the_code() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    lines = [x for x in dockerfile.splitlines() if x and not x.startswith("#")]
    starts = [i for i, x in enumerate(lines) if x.startswith("FROM ")]
    assert len(starts) == 2 and lines[starts[0]].endswith(" AS wheel"), "a wheel stage first"
    build, image = lines[starts[0] : starts[1]], lines[starts[1] :]

    def first(stage: list[str], prefix: str) -> int:
        return next(i for i, x in enumerate(stage) if x.startswith(prefix))

    # Stage 1 compiles the C encoder into the wheel and fails when it is not in it.
    assert any("apt-get install" in x and " gcc " in x for x in build), "a compiler"
    wheel = first(build, "RUN pip wheel --no-deps --wheel-dir /wheels .")
    assert first(build, "COPY audit_archive ") < wheel
    assert build[wheel].endswith("&& python /tmp/wheel_check.py /wheels")
    # The image: dependencies a layer of their own, then the wheel; no compiler.
    deps = first(image, "RUN python /tmp/requirements.py pyproject.toml deploy")
    code = first(image, "COPY --from=wheel /wheels /tmp/wheels")
    assert first(image, "COPY pyproject.toml ") < deps < code, "dependencies first"
    assert not any(x.startswith("COPY") and "audit_archive" in x for x in image)
    assert not any("gcc" in x for x in image), "the image carries no compiler"
    assert "pip install -r /tmp/requirements.txt" in dockerfile
    assert image[code + 1] == "RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels"
    assert "ENV" in dockerfile and "DAGSTER_HOME=/opt/dagster/home" in dockerfile
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/" in dockerfile
    assert "COPY deploy/healthcheck.py /opt/dagster/healthcheck.py" in dockerfile
    assert "USER dagster" in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".demo", ".env", ".git"} <= set(ignored)
    assert "**/*.so" in ignored, "a host-built extension never reaches the wheel stage"


def test_the_dependency_layer_installs_the_deploy_extra_with_one_dagster_line() -> None:
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "deploy/requirements.py", "pyproject.toml", "deploy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) <= set(listed)
    aws = next(d for d in project["dependencies"] if d.startswith("dagster-aws=="))
    assert f"dagster-postgres=={aws.split('==')[1]}" in listed, "one Dagster release line"
    assert any(x.startswith("dagster-webserver==") for x in listed), "the ui extra, expanded"
    assert not [x for x in listed if x.startswith(project["name"])], "no self-reference"


# -- Dagster's instance and workspace --------------------------------------------------------


@pytest.fixture
def production_instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    for name in ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_USER"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", "y")
    return tmp_path


def test_deploy_dagster_yaml_is_valid_with_postgres_storage_and_the_local_run_queue(
    production_instance_dir: Path, services
) -> None:
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(production_instance_dir))  # raises on errors
    assert set(config["storage"]) == {"postgres"}

    production = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert production["concurrency"] == local["concurrency"], "the same per-day limit and cap"
    assert production["python_logs"] == local["python_logs"] == {"python_log_level": "INFO"}
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


def test_run_monitoring_ends_a_run_whose_worker_died_after_a_maximum_runtime(
    production_instance_dir: Path,
) -> None:
    # The DefaultRunLauncher cannot check a run worker's health, so only a maximum
    # runtime frees the day's slot of a run whose process died with its container.
    from dagster import DagsterInstance
    from dagster._core.launcher import DefaultRunLauncher

    config = yaml.safe_load((production_instance_dir / "dagster.yaml").read_text())
    # The same instance on SQLite, so it can be built here without a PostgreSQL.
    config["storage"] = {"sqlite": {"base_dir": str(production_instance_dir / "storage")}}
    (production_instance_dir / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = DagsterInstance.from_config(str(production_instance_dir))
    try:
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert not instance.run_launcher.supports_check_run_worker_health
        assert instance.run_monitoring_enabled
        assert "MONITORING" in instance.get_required_daemon_types(), "the daemon runs it"
        max_runtime = instance.run_monitoring_max_runtime_seconds
        # Longer than any day's run (1M events took ~13 minutes), short enough that a
        # lost day comes back the same day.
        assert 3600 <= max_runtime <= 24 * 3600
        assert 0 < instance.run_monitoring_start_timeout_seconds <= 900
        assert 0 < instance.run_monitoring_cancel_timeout_seconds <= 900
    finally:
        instance.dispose()


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
    check = services[CODE]["healthcheck"]["test"]
    assert check[-3:] == ["grpc", "127.0.0.1", flag("--port")]


# -- the health check script -------------------------------------------------------------------


def _healthcheck(*args: str) -> int:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, str(REPO / "deploy" / "healthcheck.py"), *args], timeout=60
    ).returncode


def test_healthcheck_asks_the_grpc_health_service_dagster_serves() -> None:
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        assert _healthcheck("grpc", "127.0.0.1", str(port)) == 1, "DagsterApi unknown yet"
        servicer.set("DagsterApi", health_pb2.HealthCheckResponse.SERVING)
        assert _healthcheck("grpc", "127.0.0.1", str(port)) == 0
        servicer.set("DagsterApi", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert _healthcheck("grpc", "127.0.0.1", str(port)) == 1
    finally:
        server.stop(None)
    assert _healthcheck("grpc", "127.0.0.1", str(port)) == 1, "nobody listening"


def test_healthcheck_wants_a_200_from_the_webserver() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/server_info" else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        assert _healthcheck("http", f"{base}/server_info") == 0
        assert _healthcheck("http", f"{base}/other") == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- logs and credentials ------------------------------------------------------------------------


def test_every_service_rotates_its_logs(services) -> None:
    for name, service in services.items():
        logging = service.get("logging")
        assert logging, f"{name} keeps unbounded logs"
        options = logging.get("options") or {}
        assert logging["driver"] in ("local", "json-file"), name
        assert re.fullmatch(r"\d+m", options.get("max-size", "")), name
        assert 1 <= int(options.get("max-file", "0")) <= 10, name


def test_the_s3_access_keys_are_per_deployment_not_well_known(services, example) -> None:
    # An access key is all CVE-2026-40344/41145-style bypasses need: no fixed names.
    for variable in ("MINIO_ROOT_USER", "AUDIT_COLD_ACCESS_KEY"):
        assert example[variable] == "" and variable in secret_names()
        for name in ("minio", "bucket-init"):
            env = interpolate(environment(services[name]), {})
            assert env.get(variable, "") == "", f"{name}: no default {variable}"
    minio, init = script_of(services["minio"]), script_of(services["bucket-init"])
    assert "for known in minioadmin minio-admin admin root; do" in minio
    assert 'if [ "$$MINIO_ROOT_USER" = "$$known" ]; then' in minio
    assert "for known in audit-archive minioadmin minio-admin admin; do" in init
    assert 'if [ "$$AUDIT_COLD_ACCESS_KEY" = "$$known" ]; then' in init
    # The refusal comes before the server starts or the user is created.
    assert minio.index("for known") < minio.index("exec silo server")
    assert init.index("for known") < init.index("mc admin user add")

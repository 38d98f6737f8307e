"""deploy/helm/values.yaml fits Dagster's official Helm chart at the pinned release and the
archive's settings. Kubernetes and helm are not available here, so the values are checked
against facts about the chart's values schema recorded from Dagster's own sources
(audit_archive_tests/data/dagster_chart_facts.json: key paths, JSON types, closed
objects, enums), and against pyproject.toml, deploy/dagster.yaml and settings.py."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from typing import Any

import pytest
import yaml

from audit_archive.settings import DEFAULTS, FILE_VARIABLES, DefinitionSettings, Settings
from audit_archive_tests.support.deploy_files import CODE, REPO, compose_file

VALUES = REPO / "deploy" / "helm" / "values.yaml"
FACTS = REPO / "audit_archive_tests" / "data" / "dagster_chart_facts.json"
# The secrets and credentials the archive reads (each may come from X_FILE instead): only
# ever from a Kubernetes Secret.
SECRETS = set(FILE_VARIABLES)
ARCHIVE_SECRET = "audit-archive-secrets"
_JSON_TYPES = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
    "k8s": dict,
}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    return json.loads(FACTS.read_text())


def schema_problems(values: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Every place the values break a recorded fact of the chart's schema: an unknown key
    in a closed object, a value of the wrong JSON type, a value outside an enum, or a
    launcher/coordinator/log manager type without its config block."""
    objects, enums = facts["objects"], facts["enums"]
    problems: list[str] = []

    def fits(value: Any, types: str) -> bool:
        # bool is an int in Python; JSON keeps them apart.
        return any(
            isinstance(value, _JSON_TYPES[t]) and not (t == "integer" and isinstance(value, bool))
            for t in types.split("|")
        )

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, f"{path}[]")
            return
        if not isinstance(node, dict) or path not in objects:
            return
        spec = objects[path]
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            if key not in spec["keys"]:
                if spec["closed"]:
                    problems.append(f"{child}: not a key of the chart's schema")
                continue
            if value is not None and not fits(value, spec["keys"][key]):
                problems.append(
                    f"{child}: {type(value).__name__}, the schema wants {spec['keys'][key]}"
                )
            enum = enums.get(child) or (enums["pullPolicy"] if key.endswith("ullPolicy") else None)
            if enum is not None and value not in enum:
                problems.append(f"{child}: {value!r} is not one of {enum}")
            walk(value, child)

    walk(values, "")
    for path, keys in facts["rendered"].items():
        node = _get(values, path)
        if isinstance(node, dict) and not path.startswith("_"):
            problems += [f"{path}.{k}: no template renders it" for k in set(node) - set(keys)]
    for path, blocks in facts["conditionals"].items():
        node = _get(values, path)
        if (
            node is not None
            and node["type"] in blocks
            and blocks[node["type"]] not in node["config"]
        ):
            problems.append(f"{path}: type {node['type']} needs config.{blocks[node['type']]}")
    return problems


def _get(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _deployment(values: dict[str, Any]) -> dict[str, Any]:
    [deployment] = values["dagster-user-deployments"]["deployments"]
    return deployment


def _pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["k8s"]]
    return dict(r.split("==") for r in reqs if "==" in r)


# -- the chart's schema ------------------------------------------------------------------------


def test_the_values_fit_the_charts_schema(values, facts) -> None:
    assert schema_problems(values, facts) == []


@pytest.mark.parametrize(
    ("path", "key", "value", "says"),
    [
        ("runLauncher.config.k8sRunLauncher", "envSecret", [], "not a key"),
        (
            "dagsterDaemon.runCoordinator.config.queuedRunCoordinator",
            "maxConcurrentRuns",
            "4",
            "wants",
        ),
        ("runLauncher", "type", "K8sRunLaunchr", "not one of"),
        ("computeLogManager", "type", "GCSComputeLogManager", "needs config.gcsComputeLogManager"),
        ("dagster-user-deployments.deployments[]", "port", "4000", "wants integer"),
        ("dagsterDaemon.runMonitoring", "maxRuntimeSeconds", 21600, "no template renders"),
    ],
)
def test_the_schema_check_catches_what_helm_would_refuse(
    values, facts, path, key, value, says
) -> None:
    # The check above is only worth something if it fails on the mistakes helm refuses.
    broken = copy.deepcopy(values)
    target = _deployment(broken) if path.endswith("[]") else _get(broken, path)
    target[key] = value
    assert any(says in p for p in schema_problems(broken, facts)), schema_problems(broken, facts)


def test_the_facts_are_for_the_pinned_chart_release(facts) -> None:
    # The chart's version equals dagster's (helm/dagster/README.md: "1:1 correspondence").
    pins = _pins()
    assert facts["chart_version"] == pins["dagster"]
    assert facts["dagster_k8s"] == pins["dagster-k8s"] == pins["dagster-aws"]
    assert f"--version {pins['dagster']}" in VALUES.read_text()
    assert all(re.fullmatch(r"[0-9a-f]{40}", c) for c in facts["sources"].values())


def test_the_image_installs_dagster_k8s_on_the_dagster_line() -> None:
    pins = _pins()
    assert pins["dagster-k8s"] == pins["dagster-aws"], "one Dagster release line"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "requirements.py pyproject.toml deploy k8s" in dockerfile


# -- the archive's settings ----------------------------------------------------------------------


def test_every_archive_variable_is_set_and_secrets_come_only_from_a_secret(values) -> None:
    deployment = _deployment(values)
    env = deployment["env"]
    assert set(env) | SECRETS == set(DEFAULTS), "every variable, in env or in the Secret"
    assert not set(env) & SECRETS, "no secret as a plain value"
    assert deployment["envSecrets"] == [{"name": ARCHIVE_SECRET}]
    # Only the code location (and its runs) get the archive's secrets.
    for path in ("dagsterDaemon", "dagsterWebserver", "runLauncher.config.k8sRunLauncher"):
        given = (_get(values, path) or {}).get("envSecrets") or []
        assert {"name": ARCHIVE_SECRET} not in given, path
    # The env with the Secret's values is a valid configuration.
    full = {**env, **{name: "s" * 40 for name in SECRETS}}
    full["MONGODB_URI"] = "mongodb://audit-archive:pw@mongo-0.mongo:27017/dezky?replicaSet=rs0"
    full["AUDIT_SIGNING_KEYS_PREVIOUS"] = full["AUDIT_LOG_SIGNING_KEY"] = ""
    Settings.from_env(full)
    DefinitionSettings.from_env(full)


def test_runs_inherit_the_code_locations_config_and_stage_on_an_empty_dir(values) -> None:
    deployment = _deployment(values)
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    work = deployment["env"]["AUDIT_WORK_DIR"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    for where in (deployment, launcher):
        [mount] = where["volumeMounts"]
        [volume] = where["volumes"]
        assert mount["mountPath"] == work and mount["name"] == volume["name"]
        assert "emptyDir" in volume, "removed with the pod"
    requests = launcher["resources"]["requests"]
    assert {"cpu", "memory", "ephemeral-storage"} <= set(requests)
    assert "memory" in launcher["resources"]["limits"]


def test_the_code_location_serves_the_same_definitions_as_compose(values) -> None:
    args = _deployment(values)["codeServerArgs"]
    command = compose_file()["services"][CODE]["command"]
    for flag in ("--module-name", "--attribute", "--location-name"):
        assert args[args.index(flag) + 1] == command[command.index(flag) + 1]
    assert str(_deployment(values)["port"]) == command[command.index("--port") + 1]


# -- the same instance as deploy/dagster.yaml ---------------------------------------------------


def test_the_run_queue_and_monitoring_are_those_of_deploy_dagster_yaml(values) -> None:
    instance = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    runs = instance["concurrency"]["runs"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert queued["tagConcurrencyLimits"] == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    local = instance["run_coordinator"]["config"]
    assert queued["dequeueIntervalSeconds"] == local["dequeue_interval_seconds"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    # Everything but the maximum runtime, which the chart cannot pass on (the schema check
    # above refuses it): the K8sRunLauncher's worker health check finds dead run pods.
    for name, value in instance["run_monitoring"].items():
        if name != "max_runtime_seconds":
            assert monitoring[camel(name)] == value, name
    assert "maxRuntimeSeconds" not in monitoring
    # The run's event log keeps the same levels.
    assert values["pythonLogs"] == {"pythonLogLevel": instance["python_logs"]["python_log_level"]}


# -- logs and Dagster's storage -----------------------------------------------------------------


def test_compute_logs_go_to_an_ops_bucket_with_their_own_user(values) -> None:
    manager = values["computeLogManager"]
    assert manager["type"] == "S3ComputeLogManager"
    bucket = manager["config"]["s3ComputeLogManager"]["bucket"]
    assert bucket != _deployment(values)["env"]["AUDIT_COLD_BUCKET"], "never the archive's"
    ops = values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    assert ops and {"name": ARCHIVE_SECRET} not in ops
    assert values["dagsterWebserver"]["envSecrets"] == ops, "the UI reads what runs wrote"


def test_dagsters_storage_is_an_external_postgres_with_a_secret_password(values) -> None:
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlHost"]
    assert postgres["postgresqlPassword"] == "", "the password only in the Secret"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]

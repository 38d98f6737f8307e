"""The deployment grants the archive exactly what it uses (issue #16).

S3: the MinIO policy in docker-compose.yml (configs.audit-archive-policy) against the S3
calls the cold-storage code makes, derived twice: from its source (every boto3 call
ColdStore makes, whatever path it is on) and from a recording of real runs against moto
(archive, verify and restore jobs), with and without Object Lock. MongoDB: the role in
deploy/mongo/archive-role.json against a recording of the commands the same runs send.
The operation -> action tables are the public references' (named at each), not copies
of the policy: a new call the tables do not know fails here until someone maps it.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from pymongo import MongoClient, monitoring

from audit_archive.audit import restore
from audit_archive.settings import Settings
from audit_archive.stores import clients, cold
from audit_archive_dev.embedded import create_bucket
from audit_archive_tests.support.deploy_files import REPO, compose_file, filled_example, interpolate
from audit_archive_tests.support.harness import due_day, point_archive_at

# Which IAM action authorizes each S3 API operation: AWS Service Authorization Reference,
# "Actions, resources, and condition keys for Amazon S3" (MinIO uses the same names and
# checks them the same way: cmd/object-handlers.go, cmd/object-multipart-handlers.go).
S3_OPERATION_ACTIONS: dict[str, set[str]] = {
    "PutObject": {"s3:PutObject"},
    "CreateMultipartUpload": {"s3:PutObject"},
    "UploadPart": {"s3:PutObject"},
    "CompleteMultipartUpload": {"s3:PutObject"},
    "AbortMultipartUpload": {"s3:AbortMultipartUpload"},
    "ListParts": {"s3:ListMultipartUploadParts"},
    "ListMultipartUploads": {"s3:ListBucketMultipartUploads"},
    "GetObject": {"s3:GetObject"},
    "HeadObject": {"s3:GetObject"},
    "HeadBucket": {"s3:ListBucket"},
    "ListObjects": {"s3:ListBucket"},
    "ListObjectsV2": {"s3:ListBucket"},
    "GetBucketLocation": {"s3:GetBucketLocation"},
    "GetObjectLockConfiguration": {"s3:GetBucketObjectLockConfiguration"},
    "PutObjectRetention": {"s3:PutObjectRetention"},
    "GetObjectRetention": {"s3:GetObjectRetention"},
    "DeleteObject": {"s3:DeleteObject"},
    "DeleteObjects": {"s3:DeleteObject"},
    "CopyObject": {"s3:PutObject", "s3:GetObject"},
}
# Request headers that need an action of their own (same reference; MinIO's PUT and
# multipart handlers check s3:PutObjectRetention when the lock headers are present).
S3_HEADER_ACTIONS = {
    "x-amz-object-lock-mode": "s3:PutObjectRetention",
    "x-amz-object-lock-retain-until-date": "s3:PutObjectRetention",
    "x-amz-object-lock-legal-hold": "s3:PutObjectLegalHold",
    "x-amz-bypass-governance-retention": "s3:BypassGovernanceRetention",
}
# Actions on the bucket ARN; every other one is on objects (bucket/*).
S3_BUCKET_ACTIONS = {
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:GetBucketLocation",
    "s3:GetBucketObjectLockConfiguration",
}
NEVER = {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"}

# Which privilege actions each MongoDB command needs (MongoDB manual, "Privilege Actions"
# and each command's "Access Control" section). Commands that need none on a collection.
MONGO_COMMAND_ACTIONS: dict[str, set[str]] = {
    "find": {"find"},
    "getMore": {"find"},
    "aggregate": {"find"},
    "count": {"find"},
    "distinct": {"find"},
    "insert": {"insert"},
    "update": {"update"},  # + insert when a statement upserts (below)
    "delete": {"remove"},
    "createIndexes": {"createIndex"},
    "listIndexes": {"listIndexes"},
    "killCursors": {"killCursors"},
    "create": {"createCollection"},
    "listCollections": {"listCollections"},  # on the database: collection "" below
}
MONGO_NO_COLLECTION = {
    "ping", "hello", "isMaster", "ismaster", "endSessions", "commitTransaction",
    "abortTransaction", "buildInfo", "saslStart", "saslContinue", "getLastError",
}  # fmt: skip


# -- the policy and the role, as deployed -------------------------------------------------------


def policy(lock_mode: str) -> dict[str, Any]:
    """The MinIO policy compose writes for this AUDIT_COLD_OBJECT_LOCK_MODE."""
    env = filled_example(AUDIT_COLD_OBJECT_LOCK_MODE=lock_mode)
    content = interpolate(compose_file()["configs"]["audit-archive-policy"]["content"], env)
    return json.loads(content)


def allowed(doc: dict[str, Any], bucket: str = "dezky-audit") -> set[str]:
    out = set()
    for statement in doc["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        for action in statement["Action"]:
            kind = "bucket" if action in S3_BUCKET_ACTIONS else "object"
            want = f"arn:aws:s3:::{bucket}" + ("" if kind == "bucket" else "/*")
            assert statement["Resource"] == [want], f"{action} belongs on {want}"
            out.add(action)
    return out


def denied(doc: dict[str, Any]) -> set[str]:
    return {a for s in doc["Statement"] if s["Effect"] == "Deny" for a in s["Action"]}


def role_privileges(settings: Settings) -> dict[str, set[str]]:
    spec = json.loads((REPO / "deploy" / "mongo" / "archive-role.json").read_text())
    out: dict[str, set[str]] = {}
    for p in spec["privileges"]:
        name = p["collection"].replace("{events}", settings.events_collection)
        out[name.replace("{batches}", settings.batches_collection)] = set(p["actions"])
    return out


# -- what the code sends --------------------------------------------------------------------------


def coldstore_operations() -> tuple[set[str], str]:
    """The S3 operations ColdStore's source calls (client methods and paginators), and
    that source. A method counts wherever it is named, called or handed on (a conditional
    write hands ``self.client.put_object`` to the helper that adds the condition)."""
    source = inspect.getsource(cold.ColdStore)
    methods: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and func.attr == "get_paginator":
            methods.add(node.args[0].value)
        named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
        if named and node.value.attr == "client" and node.attr != "get_paginator":
            methods.add(node.attr)
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    mapping = client.meta.method_to_api_mapping
    unknown = methods - set(mapping)
    assert not unknown, f"not S3 client methods: {unknown}"
    return {mapping[m] for m in methods}, source


def s3_actions(operation: str, headers: set[str] = frozenset()) -> set[str]:
    assert operation in S3_OPERATION_ACTIONS, f"map S3 operation {operation} to its IAM action"
    return S3_OPERATION_ACTIONS[operation] | {
        S3_HEADER_ACTIONS[h] for h in headers & set(S3_HEADER_ACTIONS)
    }


@dataclass
class Recording:
    s3: set[tuple[str, frozenset[str]]] = field(default_factory=set)
    mongo: set[tuple[str, str, frozenset[str]]] = field(default_factory=set)  # db, coll, actions


class _Commands(monitoring.CommandListener):
    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in MONGO_NO_COLLECTION:
            return
        assert name in MONGO_COMMAND_ACTIONS, f"map MongoDB command {name} to its actions"
        command = event.command
        collection = command["collection"] if name == "getMore" else command[name]
        if name == "listCollections":
            collection = ""  # a database action: the resource {db, collection: ""}
        actions = set(MONGO_COMMAND_ACTIONS[name])
        if name == "update" and any(u.get("upsert") for u in command["updates"]):
            actions.add("insert")
        self.recording.mongo.add((event.database_name, collection, frozenset(actions)))

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


@pytest.fixture
def recorded(
    stack, mongo_client, monkeypatch: pytest.MonkeyPatch, tmp_path, request
) -> Iterator[tuple[Recording, Any]]:
    """A recording of every S3 call and MongoDB command the archive's own clients send,
    and a function that runs the archive, verify and restore jobs for one day."""
    rec = Recording()
    real_s3_client = clients.s3_client

    def recording_s3_client(settings: Settings):
        client = real_s3_client(settings)

        def before_call(model, params, **kwargs: Any) -> None:
            headers = frozenset(h.lower() for h in params.get("headers", {}))
            rec.s3.add((model.name, headers))

        client.meta.events.register("before-call.s3", before_call)
        return client

    def recording_mongo_client(*args: Any, **kwargs: Any) -> MongoClient:
        return MongoClient(*args, event_listeners=[_Commands(rec)], **kwargs)

    monkeypatch.setattr(clients, "s3_client", recording_s3_client)
    monkeypatch.setattr(clients, "MongoClient", recording_mongo_client)

    def run(lock_mode: str):
        name = f"priv{lock_mode.lower() or 'nolock'}{request.node.name[-6:].lower()}"
        name = re.sub(r"[^a-z0-9]", "", name)
        create_bucket(stack.s3_endpoint, f"b-{name}", object_lock=bool(lock_mode))
        extra = {"AUDIT_COLD_OBJECT_LOCK_MODE": lock_mode}
        if lock_mode:
            extra["AUDIT_COLD_OBJECT_LOCK_DAYS"] = "1"
        h = point_archive_at(stack, mongo_client, monkeypatch, name, str(tmp_path / name), **extra)
        from audit_archive.definitions import defs

        day = due_day(1)
        h.seed({day: 25})
        assert h.run(day).success
        assert h.run(day).success, "a second run of a finished day"
        verify = defs.resolve_job_def("audit_verify_job").execute_in_process(
            run_config={
                "ops": {
                    "verify_archive": {
                        "config": {"from_day": str(day), "to_day": str(day), "deep": True}
                    }
                }
            },
            raise_on_error=False,
        )
        assert verify.success
        restored = defs.resolve_job_def("audit_restore_job").execute_in_process(
            partition_key=str(day), raise_on_error=False
        )
        assert restored.success
        return h

    yield rec, run


# -- S3 ----------------------------------------------------------------------------------------


def test_the_policy_grants_what_the_coldstore_code_can_send_and_nothing_more() -> None:
    operations, source = coldstore_operations()
    needed = set().union(*(s3_actions(op) for op in operations))
    # Uploads carry Object Lock headers when a lock mode is set (MinIO then requires
    # s3:PutObjectRetention on the PUT and on CreateMultipartUpload).
    assert "ObjectLockMode" in source
    assert allowed(policy("GOVERNANCE")) == needed | {"s3:PutObjectRetention"}
    assert allowed(policy("")) <= needed
    assert "Bypass" not in source, "the archive never bypasses governance retention"
    assert not [op for op in operations if op.startswith("Delete")]


@pytest.mark.parametrize("lock_mode", ["", "GOVERNANCE", "COMPLIANCE"])
def test_the_policy_never_allows_a_delete_or_a_governance_bypass(lock_mode: str) -> None:
    doc = policy(lock_mode)
    grants = allowed(doc)
    assert not grants & NEVER
    assert not [a for a in grants if "*" in a], "no wildcard actions"
    assert denied(doc) >= NEVER, "denied outright, whatever else gets attached to the user"
    assert {"s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning"} <= denied(doc)
    assert not [a for a in denied(doc) if a in grants]


def test_recorded_runs_need_what_the_policy_grants_with_and_without_object_lock(
    recorded,
) -> None:
    rec, run = recorded
    run("GOVERNANCE")
    locked_calls = set(rec.s3)
    rec.s3.clear()
    run("")
    plain_calls = set(rec.s3)

    sent = {op for op, _ in locked_calls}
    assert {"PutObject", "HeadObject", "GetObject", "GetObjectLockConfiguration"} <= sent
    # The start-up probe (<prefix>/probe/conditional-writes, under the policy's bucket/*)
    # sees its multipart completion refused and aborts the upload.
    assert {"CompleteMultipartUpload", "AbortMultipartUpload"} <= sent, "the probe ran"
    puts = [h for op, h in locked_calls if op == "PutObject"]
    assert puts and all("x-amz-object-lock-mode" in h for h in puts), "every upload is locked"
    assert not [h for op, h in plain_calls if "x-amz-object-lock-mode" in h]
    operations, _ = coldstore_operations()
    assert sent | {op for op, _ in plain_calls} <= operations, "all through ColdStore"

    def needed(calls: set[tuple[str, frozenset[str]]]) -> set[str]:
        return set().union(*(s3_actions(op, set(h)) for op, h in calls))

    locked, plain = needed(locked_calls), needed(plain_calls)
    assert locked <= allowed(policy("GOVERNANCE")), "MinIO would deny a locked upload"
    assert plain <= allowed(policy("")), "MinIO would deny an upload"
    assert not (locked | plain) & NEVER
    # What the lock policy adds is exactly what only a locked run needs.
    extra = allowed(policy("GOVERNANCE")) - allowed(policy(""))
    assert extra and extra <= locked - plain


# -- MongoDB -----------------------------------------------------------------------------------


def test_the_mongodb_role_covers_every_command_a_run_sends(recorded) -> None:
    rec, run = recorded
    h = run("")
    settings = h.settings
    role = role_privileges(settings)
    ours = [(coll, actions) for db, coll, actions in rec.mongo if db == settings.database]
    assert ours, "nothing recorded"
    assert not [db for db, _, _ in rec.mongo if db != settings.database], "one database only"
    missing = {
        (coll, action)
        for coll, actions in ours
        for action in actions
        if action not in role.get(coll, set())
    }
    assert not missing, f"MongoDB would refuse: {sorted(missing)}"

    events = settings.events_collection
    needed_on_events = set().union(*(a for c, a in ours if c == events))
    assert {"find", "remove", "createIndex"} <= needed_on_events
    assert not role[events] & {"insert", "update", "dropCollection", "dropIndex"}
    assert role[events] - needed_on_events <= {"killCursors", "listIndexes"}, "read+remove only"
    # The role names the archive's collections and nothing else, and on the database as
    # a whole only lists its collections (the start-up check of the events' kind).
    assert role.pop("") == {"listCollections"}
    assert ("", frozenset({"listCollections"})) in ours, "start-up asks for the events' kind"
    assert set(role) == {
        events,
        settings.batches_collection,
        f"{settings.batches_collection}_leases",
        f"{settings.batches_collection}_log",
        restore.DEFAULT_COLLECTION,
    }
    touched = {c for c, _ in ours} - {""}  # the database's listCollections, checked above
    assert touched <= set(role)
    for actions in role.values():
        assert not actions & {"dropCollection", "dropDatabase", "createUser", "grantRole"}

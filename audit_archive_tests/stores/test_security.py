"""Security: authenticated, encrypted Mongo; secrets that never show; WORM storage.

- MongoDB with SCRAM and TLS (SecantusDB ``--auth`` and test certificates made with
  trustme); the archive's user has ``readWrite`` on its database only, and its
  credentials live only in ``MONGODB_URI``.
- A wrong password fails at start-up with a message that says so and does not echo it;
  secrets embedded in driver errors (a URI with a password, an endpoint with userinfo)
  are masked everywhere a run reports.
- WORM: with ``AUDIT_COLD_OBJECT_LOCK_MODE`` every PUT carries the retention, a bucket
  without Object Lock is refused at start-up, and an archived object cannot be deleted
  or overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pymongo import MongoClient

from audit_archive.cli import main
from audit_archive.errors import ConfigError
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive.stores.privileges import Access, required_actions
from audit_archive_dev.embedded import ServerProcess, create_bucket
from audit_archive_tests.support.faultproxy import FaultProxy, Rule
from audit_archive_tests.support.harness import LOG_KEY, Harness, due_day
from audit_archive_tests.support.reliability import (
    all_run_text,
    failure_messages,
    secure_uri,
    start_secure_mongo,
)

ARCHIVER, ARCHIVER_PASSWORD = "archiver", "Arch1ver-p@ss/w0rd:%"
ADMIN, ADMIN_PASSWORD = "admin", "adm1n-secret"
AUDITOR, AUDITOR_PASSWORD = "auditor", "Aud1tor-only-reads"  # the built-in read role
NO_PURGE, NO_PURGE_PASSWORD = "nopurge", "N0-purge-pass"  # everything but remove
DATABASE = "securedb"
NO_PURGE_ROLE = {
    "archiveWithoutRemove": [
        {
            "resource": {"db": DATABASE, "collection": ""},
            "actions": ["find", "insert", "update", "createIndex", "listIndexes"],
        }
    ]
}


@pytest.fixture(scope="module")
def secure_mongo() -> Iterator[tuple[ServerProcess, Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="audit-secure-mongo-"))
    server, ca_file = start_secure_mongo(
        workdir,
        {
            ARCHIVER: (ARCHIVER_PASSWORD, [{"role": "readWrite", "db": DATABASE}]),
            ADMIN: (ADMIN_PASSWORD, ["root"]),
            AUDITOR: (AUDITOR_PASSWORD, [{"role": "read", "db": DATABASE}]),
            NO_PURGE: (NO_PURGE_PASSWORD, [{"role": "archiveWithoutRemove", "db": DATABASE}]),
        },
        DATABASE,
        NO_PURGE_ROLE,
    )
    yield server, ca_file
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def quoted(password: str) -> str:
    from urllib.parse import quote

    return quote(password, safe="")


@pytest.fixture
def secure_harness(
    harness: Harness, secure_mongo: tuple[ServerProcess, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    """The harness, but its Mongo is the authenticated TLS server (the test itself
    reads and writes as an admin user; the archive runs as ``archiver``)."""
    server, ca_file = secure_mongo
    uri = secure_uri(server, ca_file, ARCHIVER, quoted(ARCHIVER_PASSWORD), DATABASE)
    monkeypatch.setenv("MONGODB_URI", uri)
    admin = MongoClient(secure_uri(server, ca_file, ADMIN, ADMIN_PASSWORD, DATABASE), tz_aware=True)
    h = Harness({**harness.env, "MONGODB_URI": uri}, admin, harness.s3)
    yield h
    admin.drop_database(DATABASE)
    admin.close()


def test_the_archive_runs_against_mongo_with_scram_and_tls(secure_harness: Harness) -> None:
    day = due_day(2)
    secure_harness.seed({day: 40, due_day(-2): 3})

    result = secure_harness.run(day)

    assert result.success, failure_messages(result)
    assert [r["part"] for r in secure_harness.records(day)] == [1]
    text = all_run_text(result)
    assert ARCHIVER_PASSWORD not in text and quoted(ARCHIVER_PASSWORD) not in text
    secure_harness.assert_invariant()


def test_a_plain_connection_to_the_tls_server_is_refused(
    secure_mongo: tuple[ServerProcess, Path],
) -> None:
    server, _ = secure_mongo
    uri = f"mongodb://{ARCHIVER}:{quoted(ARCHIVER_PASSWORD)}@127.0.0.1:{server.port}/{DATABASE}"
    settings = Settings.from_env(
        {
            "MONGODB_URI": uri
            + "?authSource=admin&directConnection=true&serverSelectionTimeoutMS=500",
            "AUDIT_SIGNING_KEY": "k" * 40,
        }
    )
    with pytest.raises(ConfigError) as raised:
        open_stores(settings)
    assert raised.value.variable == "MONGODB_URI"
    assert ARCHIVER_PASSWORD not in str(raised.value)


def test_a_wrong_password_fails_at_start_up_without_echoing_it(
    secure_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_uri = secure_harness.env["MONGODB_URI"]
    wrong = "Wr0ng-pa55word!"
    uri = server_uri.replace(quoted(ARCHIVER_PASSWORD), quoted(wrong))
    monkeypatch.setenv("MONGODB_URI", uri)
    day = due_day(2)
    secure_harness.seed({day: 5})

    with pytest.raises(ConfigError) as raised:
        open_stores(Settings.from_env({**secure_harness.env, "MONGODB_URI": uri}))
    message = str(raised.value)
    assert message.startswith("MONGODB_URI: authentication failed"), message
    result = secure_harness.run(day)

    assert not result.success
    text = all_run_text(result) + failure_messages(result) + message
    assert "authentication failed" in text
    for secret in (wrong, quoted(wrong)):
        assert secret not in text
    assert secure_harness.events.count_documents({}) == 5 and secure_harness.records() == []
    secure_harness.assert_invariant(left_in_hot=[e["_id"] for e in secure_harness.seeded])


@pytest.mark.parametrize(
    "variable, value, secret",
    [
        # A URI whose password the driver would print: the host does not answer.
        (
            "MONGODB_URI",
            "mongodb://app:Hunter2-in-uri@127.0.0.1:9/db?serverSelectionTimeoutMS=300",
            "Hunter2-in-uri",
        ),
        # An endpoint with userinfo, echoed in botocore's "could not connect" error.
        ("AUDIT_COLD_ENDPOINT", "http://minio:S3cret-in-url@127.0.0.1:9", "S3cret-in-url"),
    ],
    ids=["mongo-uri", "s3-endpoint"],
)
def test_secrets_inside_driver_errors_are_masked(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, secret: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = harness.run(due_day(2))
    assert not result.success
    assert f"{variable}: " in failure_messages(result), "the message names the variable"
    text = all_run_text(result) + failure_messages(result)
    assert secret not in text, text


# -- privileges (issue 11) -------------------------------------------------------------


def _as(harness: Harness, user: str, password: str) -> str:
    return harness.env["MONGODB_URI"].replace(
        f"{ARCHIVER}:{quoted(ARCHIVER_PASSWORD)}@", f"{user}:{quoted(password)}@"
    )


@pytest.mark.parametrize(
    "user, password, lacking, not_named",
    [
        (
            AUDITOR,
            AUDITOR_PASSWORD,
            [
                f"remove, createIndex on {DATABASE}.auditevents",
                f"insert, update, createIndex on {DATABASE}.archivebatches",
                f"insert, update, remove on {DATABASE}.archivebatches_leases",
            ],
            "find",
        ),
        (
            NO_PURGE,
            NO_PURGE_PASSWORD,
            [f"remove on {DATABASE}.auditevents", f"remove on {DATABASE}.archivebatches_leases"],
            "insert",
        ),
    ],
    ids=["read-only", "no-remove"],
)
def test_a_user_without_the_privileges_a_run_needs_fails_at_start_up_naming_them(
    secure_harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    user: str,
    password: str,
    lacking: list[str],
    not_named: str,
) -> None:
    day = due_day(2)
    secure_harness.seed({day: 5})
    uri = _as(secure_harness, user, password)
    monkeypatch.setenv("MONGODB_URI", uri)

    with pytest.raises(ConfigError) as raised:
        open_stores(Settings.from_env({**secure_harness.env, "MONGODB_URI": uri}))
    result = secure_harness.run(day)
    check_exit = main(["check"])

    message = str(raised.value)
    assert raised.value.variable == "MONGODB_URI"
    assert "lacks privileges the archive needs" in message, message
    for missing in lacking:
        assert missing in message, message
    assert f"{not_named} on" not in message and not_named + "," not in message
    assert "_log" not in message, "the signed log is off: its collection is not asked for"
    assert not result.success and lacking[0] in failure_messages(result)
    stderr = capsys.readouterr().err
    assert check_exit == 2 and lacking[0] in stderr, stderr
    for text in (message, all_run_text(result), failure_messages(result), stderr):
        assert password not in text and quoted(password) not in text
    assert secure_harness.events.count_documents({}) == 5 and secure_harness.records() == []


def test_a_reader_needs_only_to_read(
    secure_harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify, search and prove open the stores for reading: the read role is enough, and
    the archive's own user passes the archive's check."""
    uri = _as(secure_harness, AUDITOR, AUDITOR_PASSWORD)
    open_stores(
        Settings.from_env({**secure_harness.env, "MONGODB_URI": uri}), access=Access.READ
    ).close()
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "every privilege the archive needs" in out and ARCHIVER_PASSWORD not in out


def test_a_uri_without_a_user_is_told_the_server_requires_one(secure_harness: Harness) -> None:
    uri = secure_harness.env["MONGODB_URI"].replace(f"{ARCHIVER}:{quoted(ARCHIVER_PASSWORD)}@", "")
    with pytest.raises(ConfigError) as raised:
        open_stores(Settings.from_env({**secure_harness.env, "MONGODB_URI": uri}))
    assert raised.value.variable == "MONGODB_URI"
    assert "requires authentication" in str(raised.value), str(raised.value)


def test_with_the_signed_log_on_its_collection_is_asked_for_too(
    secure_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = _as(secure_harness, AUDITOR, AUDITOR_PASSWORD)
    env = {**secure_harness.env, "MONGODB_URI": uri, "AUDIT_LOG_SIGNING_KEY": LOG_KEY}
    with pytest.raises(ConfigError) as raised:
        open_stores(Settings.from_env(env))
    assert f"insert, createIndex on {DATABASE}.archivebatches_log" in str(raised.value)
    open_stores(Settings.from_env(env), access=Access.READ).close()  # find is granted


def test_the_deployment_role_grants_every_action_the_start_up_check_asks_for() -> None:
    role = json.loads((Path(__file__).parents[2] / "deploy/mongo/archive-role.json").read_text())
    granted = {p["collection"]: set(p["actions"]) for p in role["privileges"]}
    names = ("{events}", "{batches}", "{batches}_leases", "{batches}_log")
    for access in Access:
        for collection, actions in required_actions(access, *names).items():
            assert set(actions) <= granted[collection], (access, collection)


@pytest.mark.parametrize(
    "bucket, answer, variable",
    [
        ("denied-object-lock-audit", None, "AUDIT_COLD_BUCKET"),  # missing, whatever its name
        ("b-forbidden", 403, "AUDIT_COLD_ACCESS_KEY"),
        ("b-broken", 400, "AUDIT_COLD_BUCKET"),
    ],
    ids=["missing", "denied", "unusable"],
)
def test_a_bucket_problem_names_its_variable_by_its_kind_not_by_its_words(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    bucket: str,
    answer: int | None,
    variable: str,
) -> None:
    with FaultProxy(harness.s3.meta.endpoint_url) as proxy:
        if answer is not None:
            proxy.add(Rule("status", method="HEAD", status=answer, code="Refused", times=None))
        env = {**harness.env, "AUDIT_COLD_ENDPOINT": proxy.url, "AUDIT_COLD_BUCKET": bucket}
        with pytest.raises(ConfigError) as raised:
            open_stores(Settings.from_env(env))
    assert raised.value.variable == variable, str(raised.value)
    assert bucket in str(raised.value)


# -- WORM ------------------------------------------------------------------------------


def locked_bucket(harness: Harness, monkeypatch: pytest.MonkeyPatch, mode: str) -> str:
    bucket = harness.bucket + "-locked"
    create_bucket(harness.s3.meta.endpoint_url, bucket, object_lock=True)
    for name, value in (
        ("AUDIT_COLD_BUCKET", bucket),
        ("AUDIT_COLD_OBJECT_LOCK_MODE", mode),
        ("AUDIT_COLD_OBJECT_LOCK_DAYS", "30"),
    ):
        monkeypatch.setenv(name, value)
        harness.env[name] = value
    return bucket


def test_a_bucket_without_object_lock_is_refused_at_start_up(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_COLD_OBJECT_LOCK_MODE", "COMPLIANCE")
    monkeypatch.setenv("AUDIT_COLD_OBJECT_LOCK_DAYS", "30")
    day = due_day(2)
    harness.seed({day: 5})

    result = harness.run(day)

    assert not result.success
    message = failure_messages(result)
    assert "AUDIT_COLD_OBJECT_LOCK_MODE" in message and "Object Lock" in message, message
    assert harness.object_keys() == [] and harness.records() == []
    assert harness.events.count_documents({}) == 5
    harness.assert_invariant(left_in_hot=[e["_id"] for e in harness.seeded])


def test_every_put_carries_the_retention_and_locked_objects_cannot_be_deleted_or_overwritten(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = locked_bucket(harness, monkeypatch, "GOVERNANCE")
    day = due_day(2)
    harness.seed({day: 30})
    with FaultProxy(harness.s3.meta.endpoint_url) as proxy:
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", proxy.url)
        result = harness.run(day)
    assert result.success, failure_messages(result)

    puts = [
        r for r in proxy.without_probe() if r.operation in ("PutObject", "CreateMultipartUpload")
    ]
    assert len(puts) == 2
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    for put in puts:
        assert put.header("x-amz-object-lock-mode") == "GOVERNANCE"
        until = dt.datetime.fromisoformat(put.header("x-amz-object-lock-retain-until-date"))
        assert abs((until - soon).total_seconds()) < 3600
    s3: Any = harness.s3
    for key in harness.object_keys():
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        version = head["VersionId"]
        original = harness.get(key)
        with pytest.raises(ClientError) as denied:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        s3.put_object(Bucket=bucket, Key=key, Body=b"forged")  # a new version, at most
        kept = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert kept == original, "the locked version is unchanged"
        s3.delete_object(Bucket=bucket, Key=key)  # a delete marker hides; nothing is lost
        kept = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert kept == original


def test_a_multipart_upload_under_object_lock_carries_the_retention(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Retention is asked for when the multipart upload is created (S3 takes no lock
    headers on its parts) and holds for the completed object: every part belongs to that
    upload, and the object cannot be deleted. (moto drops the lock headers of a multipart
    upload: the confirmation finds the object without retention and sets it.)"""
    bucket = locked_bucket(harness, monkeypatch, "GOVERNANCE")
    monkeypatch.setenv("AUDIT_COLD_PART_SIZE_MIB", "5")
    path = tmp_path / "large"
    path.write_bytes(os.urandom(11 * 2**20))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with FaultProxy(harness.s3.meta.endpoint_url) as proxy:
        monkeypatch.setenv("AUDIT_COLD_ENDPOINT", proxy.url)
        stores = open_stores(Settings.from_env())
        try:
            layout = stores.cold.put_file("audit/large", str(path), path.stat().st_size, sha, "x/y")
            confirmed = stores.cold.confirm(
                "audit/large", path.stat().st_size, sha, str(path), layout
            )
        finally:
            stores.close()

    assert layout.parts == 3 and confirmed.method == "checksum"
    [create] = [r for r in proxy.without_probe() if r.operation == "CreateMultipartUpload"]
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    assert create.header("x-amz-object-lock-mode") == "GOVERNANCE"
    until = dt.datetime.fromisoformat(create.header("x-amz-object-lock-retain-until-date"))
    assert abs((until - soon).total_seconds()) < 3600
    parts = [r for r in proxy.without_probe() if r.operation == "UploadPart"]
    [complete] = [r for r in proxy.without_probe() if r.operation == "CompleteMultipartUpload"]
    upload_ids = {r.params["uploadId"][0] for r in [*parts, complete]}
    assert len(parts) == 3 and len(upload_ids) == 1
    s3: Any = harness.s3
    head = s3.head_object(Bucket=bucket, Key="audit/large")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - soon).total_seconds()) < 3600
    with pytest.raises(ClientError) as denied:
        s3.delete_object(Bucket=bucket, Key="audit/large", VersionId=head["VersionId"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"

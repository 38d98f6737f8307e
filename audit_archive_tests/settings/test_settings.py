"""Configuration: SPEC defaults, and every bad value named by its variable, never echoed
when it is a secret."""

from __future__ import annotations

import datetime as dt

import pytest

from audit_archive.errors import ConfigError
from audit_archive.format.manifest import SignatureStatus, sign_manifest, verify_signature
from audit_archive.redact import redact
from audit_archive.settings import (
    DefinitionSettings,
    Settings,
    keys_from_file,
    verification_keys_from_env,
)

KEY = "s" * 32


def test_defaults_are_the_specs() -> None:
    s = Settings.from_env({"AUDIT_SIGNING_KEY": KEY})
    assert (s.mongodb_uri, s.database) == ("mongodb://127.0.0.1:27017/dezky", "dezky")
    assert (s.events_collection, s.batches_collection) == ("auditevents", "archivebatches")
    assert (s.cold_endpoint, s.cold_region, s.cold_bucket, s.cold_prefix) == (
        None,
        "us-east-1",
        "dezky-audit",
        "audit",
    )
    assert (s.cold_sse, s.retention_days, s.previous_keys) == (False, 90, ())
    d = DefinitionSettings.from_env({})
    assert (d.start_date, d.run_hour_utc, d.enabled, d.retention_days) == (
        dt.date(2024, 1, 1),
        3,
        False,
        90,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "AUDIT_SIGNING_KEY"),
        ({"AUDIT_SIGNING_KEY": "short"}, "AUDIT_SIGNING_KEY"),
        ({"MONGODB_URI": "mongodb://h:27017"}, "MONGODB_URI"),
        ({"MONGODB_URI": "postgres://h/db"}, "MONGODB_URI"),
        ({"AUDIT_COLD_BUCKET": "Bad_Bucket"}, "AUDIT_COLD_BUCKET"),
        ({"AUDIT_COLD_ENDPOINT": "minio:9000"}, "AUDIT_COLD_ENDPOINT"),
        ({"AUDIT_COLD_ACCESS_KEY": "only-half"}, "AUDIT_COLD_SECRET_KEY"),
        ({"AUDIT_COLD_SSE": "maybe"}, "AUDIT_COLD_SSE"),
        ({"AUDIT_HOT_RETENTION_DAYS": "ninety"}, "AUDIT_HOT_RETENTION_DAYS"),
        ({"AUDIT_HOT_RETENTION_DAYS": "-1"}, "AUDIT_HOT_RETENTION_DAYS"),
        ({"ARCHIVE_START_DATE": "2024/01/01"}, "ARCHIVE_START_DATE"),
        ({"AUDIT_COLD_OBJECT_LOCK_MODE": "FOREVER"}, "AUDIT_COLD_OBJECT_LOCK_MODE"),
        ({"AUDIT_COLD_OBJECT_LOCK_MODE": "COMPLIANCE"}, "AUDIT_COLD_OBJECT_LOCK_DAYS"),
        (
            {"AUDIT_EVENTS_COLLECTION": "x", "AUDIT_BATCHES_COLLECTION": "x"},
            "AUDIT_BATCHES_COLLECTION",
        ),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env(
            {"AUDIT_SIGNING_KEY": KEY, **env} if variable != "AUDIT_SIGNING_KEY" else env
        )
    assert e.value.variable == variable
    assert str(e.value).startswith(variable)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ARCHIVE_START_DATE": "2024-02-30"}, "ARCHIVE_START_DATE"),
        ({"ARCHIVE_RUN_HOUR_UTC": "24"}, "ARCHIVE_RUN_HOUR_UTC"),
        ({"ARCHIVE_ENABLED": "yes please"}, "ARCHIVE_ENABLED"),
    ],
)
def test_definition_variables_are_checked_when_the_location_loads(env, variable) -> None:
    with pytest.raises(ConfigError, match=variable):
        DefinitionSettings.from_env(env)


def test_a_short_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AUDIT_SIGNING_KEY": "hunter2-secret"})
    assert "hunter2" not in str(e.value)


def test_secrets_stay_out_of_repr_and_are_redacted_from_messages() -> None:
    s = Settings.from_env(
        {
            "AUDIT_SIGNING_KEY": KEY,
            "AUDIT_SIGNING_KEYS_PREVIOUS": "old-key-1, old-key-2",
            "MONGODB_URI": "mongodb://app:p%40ss-w0rd@db:27017/dezky",
            "AUDIT_COLD_ACCESS_KEY": "AKIA",
            "AUDIT_COLD_SECRET_KEY": "s3-secret-value",
        }
    )
    text = repr(s)
    for secret in (KEY, "old-key-1", "p%40ss", "s3-secret-value"):
        assert secret not in text
    assert s.verification_keys == (KEY, "old-key-1", "old-key-2")
    message = (
        f"failed mongodb://app:p%40ss-w0rd@db:27017 with p@ss-w0rd and {KEY} and s3-secret-value"
    )
    cleaned = redact(message, s.secrets)
    assert "p@ss-w0rd" not in cleaned and "p%40ss-w0rd" not in cleaned
    assert KEY not in cleaned and "s3-secret-value" not in cleaned
    assert "mongodb://app:***@db:27017" in cleaned


def test_a_token_as_a_uri_userinfo_is_masked_whole() -> None:
    cleaned = redact("POST https://ghp_tok3n-value@witness.example/add-checkpoint failed")
    assert "tok3n" not in cleaned
    assert "https://***@witness.example/add-checkpoint" in cleaned
    assert redact("mail bob@example.com") == "mail bob@example.com"  # no scheme, no URI


# -- one rule for signing keys, wherever they are read (issue 17, item 7) ------------------


@pytest.mark.parametrize("padded", [KEY + "\n", KEY + "\r\n", " " + KEY, KEY + "\t"])
def test_a_signing_key_with_surrounding_whitespace_is_refused_without_echoing_it(
    padded: str,
) -> None:
    for read in (
        lambda: Settings.from_env({"AUDIT_SIGNING_KEY": padded}),
        lambda: Settings.from_env({"AUDIT_SIGNING_KEY": padded}, require_signing_key=False),
        lambda: verification_keys_from_env({"AUDIT_SIGNING_KEY": padded}),
    ):
        with pytest.raises(ConfigError) as e:
            read()
        assert e.value.variable == "AUDIT_SIGNING_KEY"
        assert "whitespace" in str(e.value) and KEY not in str(e.value)


def test_a_key_verifies_the_same_as_current_rotated_or_from_a_key_file(tmp_path) -> None:
    """A manifest signed by the current key still verifies once that key is rotated into
    AUDIT_SIGNING_KEYS_PREVIOUS (as the value of a key file would be, newline and all) or
    handed over in a key file: every reader takes the key without surrounding whitespace."""
    manifest = sign_manifest({"version": 1, "day": "2026-08-30", "part": 1}, KEY)
    current = Settings.from_env({"AUDIT_SIGNING_KEY": KEY})
    rotated = Settings.from_env(
        {"AUDIT_SIGNING_KEY": "n" * 32, "AUDIT_SIGNING_KEYS_PREVIOUS": f" old-key ,{KEY}\n"}
    )
    key_file = tmp_path / "auditor.key"
    key_file.write_bytes(f"other-key\r\n\n  {KEY}  \r\n".encode())

    assert [k.get_secret_value() for k in rotated.previous_keys] == ["old-key", KEY]
    assert keys_from_file(str(key_file)) == ("other-key", KEY)
    for keys in (
        current.verification_keys,
        rotated.verification_keys,
        keys_from_file(str(key_file)),
        verification_keys_from_env({"AUDIT_SIGNING_KEYS_PREVIOUS": KEY + "\n"}),
    ):
        assert verify_signature(manifest, keys) is SignatureStatus.VALID, keys


def test_a_missing_key_file_is_a_configuration_error_naming_the_option(tmp_path) -> None:
    with pytest.raises(ConfigError) as e:
        keys_from_file(str(tmp_path / "absent.key"))
    assert e.value.variable == "--key-file" and "absent.key" in str(e.value)


@pytest.mark.parametrize("prefix", ["", "  ", "/", "//"])
def test_an_empty_cold_prefix_is_refused_not_read_as_the_default(prefix: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AUDIT_SIGNING_KEY": KEY, "AUDIT_COLD_PREFIX": prefix})
    assert e.value.variable == "AUDIT_COLD_PREFIX" and "empty" in str(e.value)
    assert Settings.from_env({"AUDIT_SIGNING_KEY": KEY}).cold_prefix == "audit"
    assert (
        Settings.from_env({"AUDIT_SIGNING_KEY": KEY, "AUDIT_COLD_PREFIX": "/a/b/"}).cold_prefix
        == "a/b"
    )

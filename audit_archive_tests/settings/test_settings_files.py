"""Secrets from files (issue 25): every secret or credential X may be given as the file
``X_FILE`` names (Docker and Kubernetes secrets), wherever the environment is read: the
settings, the readers that need only the keys, the code location's resources and a run.
Both set, an unreadable or empty file: a configuration error naming the variable and the
path, never a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagster import Definitions

from audit_archive.defs.archive_asset import build_archive_job, cold_archive_asset
from audit_archive.defs.partitions import daily_partitions
from audit_archive.defs.resources import ArchiveResource, resources
from audit_archive.errors import ConfigError
from audit_archive.format.manifest import SignatureStatus, verify_signature
from audit_archive.settings import (
    FILE_VARIABLES,
    DefinitionSettings,
    Keys,
    Settings,
    verification_keys_from_env,
)
from audit_archive_tests.support.harness import LOG_KEY, LOG_VERIFIER, Harness, due_day

KEY = "f" * 32 + "-from-a-file"
# A valid value of each variable that may come from a file, and what Settings makes of it.
VALUES = {
    "MONGODB_URI": "mongodb://app:file-p%40ss@db:27017/fromfile",
    "AUDIT_SIGNING_KEY": KEY,
    "AUDIT_SIGNING_KEYS_PREVIOUS": "old-key-1,old-key-2",
    "AUDIT_COLD_ACCESS_KEY": "file-access-key",
    "AUDIT_COLD_SECRET_KEY": "file-secret-key",
    "AUDIT_LOG_SIGNING_KEY": LOG_KEY,
}
# The cold credentials come in pairs: the other half, from the environment.
PARTNER = {
    "AUDIT_COLD_ACCESS_KEY": {"AUDIT_COLD_SECRET_KEY": "env-secret-key"},
    "AUDIT_COLD_SECRET_KEY": {"AUDIT_COLD_ACCESS_KEY": "env-access-key"},
}


def value_of(settings: Settings, variable: str) -> object:
    """What the settings hold for ``variable``, as text."""
    return {
        "MONGODB_URI": lambda s: (s.mongodb_uri, s.database),
        "AUDIT_SIGNING_KEY": lambda s: s.signing_key.get_secret_value(),
        "AUDIT_SIGNING_KEYS_PREVIOUS": lambda s: s.verification_keys[1:],
        "AUDIT_COLD_ACCESS_KEY": lambda s: s.cold_access_key,
        "AUDIT_COLD_SECRET_KEY": lambda s: s.cold_secret_key.get_secret_value(),
        "AUDIT_LOG_SIGNING_KEY": lambda s: (s.log_signer.key_string, s.log_verifier.key_string),
    }[variable](settings)


def signing_key_unless(variable: str) -> dict[str, str]:
    """The required signing key, unless it is the variable under test."""
    return {} if variable == "AUDIT_SIGNING_KEY" else {"AUDIT_SIGNING_KEY": KEY}


def secret_file(tmp_path: Path, text: str | bytes, name: str = "secret") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_the_variables_that_may_come_from_a_file_are_every_secret_and_credential() -> None:
    assert set(FILE_VARIABLES) == set(VALUES)


@pytest.mark.parametrize("variable", sorted(VALUES))
@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_a_file_gives_the_same_settings_as_the_variable(
    tmp_path: Path, variable: str, ending: str
) -> None:
    """The file's content, less one trailing newline, is the value: as if set directly."""
    base = {**signing_key_unless(variable), **PARTNER.get(variable, {})}
    direct = Settings.from_env({**base, variable: VALUES[variable]})
    path = secret_file(tmp_path, VALUES[variable] + ending)
    from_file = Settings.from_env({**base, f"{variable}_FILE": path})
    assert value_of(from_file, variable) == value_of(direct, variable)
    # An empty variable beside the file is unset (compose passes `X=` for unset ones).
    blank = Settings.from_env({**base, variable: "", f"{variable}_FILE": path})
    assert value_of(blank, variable) == value_of(direct, variable)


def test_only_one_newline_is_removed_and_the_signing_key_rule_still_holds(tmp_path) -> None:
    for padded in (KEY + "\n\n", KEY + " \n", " " + KEY):
        with pytest.raises(ConfigError) as e:
            Settings.from_env({"AUDIT_SIGNING_KEY_FILE": secret_file(tmp_path, padded)})
        assert e.value.variable == "AUDIT_SIGNING_KEY" and "whitespace" in str(e.value)
        assert KEY not in str(e.value)
    # Lists are trimmed per entry, so their files keep working with any line ending.
    path = secret_file(tmp_path, "old-key-1, old-key-2\r\n\n")
    settings = Settings.from_env(
        {"AUDIT_SIGNING_KEY": KEY, "AUDIT_SIGNING_KEYS_PREVIOUS_FILE": path}
    )
    assert settings.verification_keys == (KEY, "old-key-1", "old-key-2")


@pytest.mark.parametrize("variable", sorted(VALUES))
def test_the_variable_and_its_file_both_set_is_refused_naming_both(
    tmp_path: Path, variable: str
) -> None:
    env = {
        **signing_key_unless(variable),
        **PARTNER.get(variable, {}),
        variable: VALUES[variable],
        f"{variable}_FILE": secret_file(tmp_path, VALUES[variable]),
    }
    with pytest.raises(ConfigError) as e:
        Settings.from_env(env)
    assert e.value.variable == variable
    assert variable in str(e.value) and f"{variable}_FILE" in str(e.value)
    assert_no_secret(str(e.value))


def unreadable(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Files that cannot give a value: (path, what the error says about it)."""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return {
        "missing": (str(tmp_path / "absent"), "No such file"),
        "folder": (str(folder), "Is a directory"),
        "not UTF-8": (secret_file(tmp_path, b"\xff\xfe" + KEY.encode(), "latin"), "Unicode"),
        "empty": (secret_file(tmp_path, "\n", "empty"), "is empty"),
    }


@pytest.mark.parametrize("variable", sorted(VALUES))
def test_an_unreadable_file_names_the_variable_and_path_never_the_content(
    tmp_path: Path, variable: str
) -> None:
    for path, reason in unreadable(tmp_path).values():
        with pytest.raises(ConfigError) as e:
            Settings.from_env({**signing_key_unless(variable), f"{variable}_FILE": path})
        assert e.value.variable == f"{variable}_FILE"
        assert path in str(e.value) and reason in str(e.value), str(e.value)
        assert_no_secret(str(e.value))


def assert_no_secret(text: str) -> None:
    for value in [KEY, *VALUES.values(), "file-p@ss", "file-p%40ss", "old-key-1"]:
        if value not in ("file-access-key",):
            assert value not in text, f"a secret in: {text}"


def test_a_bad_secret_from_a_file_is_refused_without_echoing_it(tmp_path) -> None:
    short = "short-but-secret-value"
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"AUDIT_SIGNING_KEY_FILE": secret_file(tmp_path, short)})
    assert e.value.variable == "AUDIT_SIGNING_KEY" and short not in str(e.value)
    signer = "PRIVATE+KEY+not-a-real-key-secret-part"
    with pytest.raises(ConfigError) as e:
        Settings.from_env(
            {"AUDIT_SIGNING_KEY": KEY, "AUDIT_LOG_SIGNING_KEY_FILE": secret_file(tmp_path, signer)}
        )
    assert e.value.variable == "AUDIT_LOG_SIGNING_KEY" and "secret-part" not in str(e.value)


def test_readers_that_need_only_the_keys_read_their_files(tmp_path) -> None:
    """check-proof and the signed log's options read the keys alone (no MongoDB, no S3)."""
    env = {
        "AUDIT_SIGNING_KEY_FILE": secret_file(tmp_path, KEY + "\n", "key"),
        "AUDIT_SIGNING_KEYS_PREVIOUS_FILE": secret_file(tmp_path, "old-key-1\n", "previous"),
        "AUDIT_LOG_SIGNING_KEY_FILE": secret_file(tmp_path, LOG_KEY + "\n", "log"),
        "MONGODB_URI": "not even a URI: readers of the keys do not look",
    }
    assert verification_keys_from_env(env) == (KEY, "old-key-1")
    assert Keys.read(env).log_verifier.key_string == LOG_VERIFIER
    DefinitionSettings.from_env(env)  # the definitions' variables hold no secret


def test_the_code_location_resources_read_the_files(tmp_path, monkeypatch) -> None:
    """Loaded with secrets as files, the resources bind nothing secret and the archive's
    settings come from the files when the run starts."""
    for variable in list(os.environ):  # the variables the test session set
        if variable.startswith(("AUDIT_", "ARCHIVE_", "MONGODB_URI")):
            monkeypatch.delenv(variable)
    for variable in VALUES:
        path = secret_file(tmp_path, VALUES[variable] + "\n", variable)
        monkeypatch.setenv(f"{variable}_FILE", path)
    loaded = resources()
    archive = loaded["archive"]
    assert isinstance(archive, ArchiveResource)
    assert loaded["cold_storage"].aws_secret_access_key is None, "nothing secret bound"
    assert loaded["hot_store"].uri == "mongodb://127.0.0.1:27017/dezky", "the default shown"
    settings = archive.settings()
    direct = Settings.from_env(VALUES)
    for variable in VALUES:
        assert value_of(settings, variable) == value_of(direct, variable), variable


def test_a_run_archives_with_every_secret_from_a_file(
    harness: Harness, tmp_path: Path, monkeypatch
) -> None:
    """A code location loaded with MONGODB_URI, the S3 credentials and both signing keys in
    files archives a day: the manifest is signed with the file's key, the log's checkpoint
    with the file's log key."""
    for variable in ("MONGODB_URI", "AUDIT_COLD_ACCESS_KEY", "AUDIT_COLD_SECRET_KEY"):
        path = secret_file(tmp_path, harness.env[variable] + "\n", variable)
        monkeypatch.delenv(variable)
        monkeypatch.setenv(f"{variable}_FILE", path)
    monkeypatch.delenv("AUDIT_SIGNING_KEY")
    monkeypatch.setenv("AUDIT_SIGNING_KEY_FILE", secret_file(tmp_path, KEY + "\n", "key"))
    monkeypatch.setenv("AUDIT_LOG_SIGNING_KEY_FILE", secret_file(tmp_path, LOG_KEY, "log"))
    day = due_day(1)
    harness.seed({day: 5})

    partitions = daily_partitions(DefinitionSettings.from_env())
    location = Definitions(
        assets=[cold_archive_asset(partitions)],
        jobs=[build_archive_job(partitions)],
        resources=resources(),
    )
    job = location.resolve_job_def("audit_archive_job")
    result = job.execute_in_process(partition_key=str(day), raise_on_error=False)

    assert result.success
    assert not harness.hot_seqs(), "archived and purged"
    assert verify_signature(harness.manifest(day), [KEY]) is SignatureStatus.VALID
    assert [r["part"] for r in harness.records(day)] == [1]
    assert harness.object_keys(f"{harness.settings.cold_prefix}/log/"), "the log signed"


@pytest.mark.parametrize("command", [["verify"], ["archives"], ["check"]])
def test_the_command_line_reports_an_unreadable_file_as_a_configuration_error(
    tmp_path: Path, monkeypatch, capsys, command: list[str]
) -> None:
    from audit_archive.cli import main

    missing = str(tmp_path / "signing-key")
    monkeypatch.delenv("AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AUDIT_SIGNING_KEY_FILE", missing)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"AUDIT_SIGNING_KEY_FILE: cannot read {missing}" in err, err

"""Environment -> validated settings, declared once with pydantic-settings. Pure: no clients.

Every variable is one field below: its name, default, bounds and type (``SecretStr`` for a
secret), with the domain rules as validators. Adding a variable is one line in the class
that reads it, one row in the README's tables and one line in ``.env.example``
(test_settings_docs.py checks all three agree).

Two groups, read at different moments (SPEC section 6): ``DefinitionSettings`` shape the
Dagster definitions and are read when the code location loads; ``Settings`` (connections
and secrets) are read when a run starts, so one process can serve any environment.
Every problem raises ConfigError naming the variable, never echoing a secret.

How a variable is declared (``variable``, ``credential``, ``secret``) and read (unset or
blank = the default, trimmed, a secret X from the file ``X_FILE`` names) is in
environment.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo

from audit_archive.environment import (
    Day,
    Flag,
    Variables,
    Whole,
    credential,
    declared,
    env_text,
    is_kind,
    read_text_file,
    secret,
    variable,
)
from audit_archive.errors import ConfigError
from audit_archive.format.note import Signer, Verifier, parse_signer, parse_verifier
from audit_archive.format.witness import WitnessEndpoint, parse_witness_list

MIN_SIGNING_KEY_BYTES = 32
MIN_PART_SIZE_MIB = 5  # S3's floor for every multipart part but the last
# How uploads are confirmed (stores.cold.ConfirmMode): the server's checksum when it keeps
# one, else a read-back; only the checksum; or always a read-back.
CONFIRM_MODES = ("auto", "checksum", "readback")

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_COLLECTION = re.compile(r"^[^$\x00]+$")


def is_collection_name(value: str) -> bool:
    """A name MongoDB accepts for a collection the archive reads or writes (no "$", no
    NUL, not empty or blank, not a system collection): one rule for the configured
    collections and restore's target."""
    return (
        bool(_COLLECTION.match(value)) and bool(value.strip()) and not value.startswith("system.")
    )


def database_from_uri(uri: str) -> str:
    """The database named by the URI's path (the SPEC puts it there)."""
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError("MONGODB_URI", "must start with mongodb:// or mongodb+srv://")
    rest = uri.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1]  # credentials may contain '/'
    path = rest.split("/", 1)[1] if "/" in rest else ""
    database = unquote(path.split("?", 1)[0])
    if not database:
        raise ConfigError("MONGODB_URI", "names no database: add it as the path (…/dezky)")
    if re.search(r'[/\\. "$]', database):
        raise ConfigError("MONGODB_URI", f"database name {database!r} is not valid")
    return database


def uri_password(uri: str) -> str | None:
    m = re.match(r"^mongodb(?:\+srv)?://[^:@/]*:([^@/]*)@", uri)
    return unquote(m.group(1)) if m else None


def key_list(text: str, separator: str) -> tuple[str, ...]:
    """Keys separated by ``separator``, each without surrounding whitespace, blanks skipped."""
    return tuple(k.strip() for k in text.split(separator) if k.strip())


# -- the groups ---------------------------------------------------------------------------------


class DayWindow(Variables):
    """Which days are archived: read by the definitions and by every run."""

    start_date: Day = variable("ARCHIVE_START_DATE", dt.date(2024, 1, 1))
    retention_days: Whole = variable("AUDIT_HOT_RETENTION_DAYS", 90, ge=0, le=36500)


class DefinitionSettings(DayWindow):
    """Variables that shape the Dagster definitions (read when the code location loads)."""

    run_hour_utc: Whole = variable("ARCHIVE_RUN_HOUR_UTC", 3, ge=0, le=23)
    enabled: Flag = variable("ARCHIVE_ENABLED", False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DefinitionSettings:
        return cls.read(env)


# -- signing keys ---------------------------------------------------------------------------
# One rule everywhere a key is read: a key is the exact UTF-8 bytes of its value and never
# starts or ends with whitespace. AUDIT_SIGNING_KEY signs, so one with surrounding whitespace
# (what `$(cat key)` avoids and a key file's newline gives) is refused: trimming it silently
# would change the key id of every manifest it signs, and keeping it made a key that verified
# as the current key but no longer once rotated or read from a key file, which trim. Lists of
# keys (AUDIT_SIGNING_KEYS_PREVIOUS, a --key-file) take each entry without its surrounding
# whitespace, so "k1, k2" and a file's line endings name the keys k1, k2. AUDIT_SIGNING_KEY_FILE
# loses one trailing newline (as every X_FILE does) and is then held to the same rule.


class Keys(Variables):
    """The keys: the manifests' HMAC keys and the signed log's (SPEC section 7). Readers
    that need nothing else (check-proof, the log options) read this group alone."""

    signing_key: SecretStr = secret("AUDIT_SIGNING_KEY", SecretStr(""), exact=True)
    previous_keys: tuple[SecretStr, ...] = secret("AUDIT_SIGNING_KEYS_PREVIOUS", ())
    # The signed log: the signer switches it on; readers need only the verifier (set, or
    # derived from the signer).
    log_signing_key: SecretStr | None = secret("AUDIT_LOG_SIGNING_KEY", None)
    log_verifier_key: str | None = variable("AUDIT_LOG_VERIFIER_KEY", None)
    # Witnesses (SPEC section 8): nothing leaves hot until a quorum cosigned the head.
    log_witness_list: str | None = variable("AUDIT_LOG_WITNESSES", None)
    witness_quorum: Whole | None = variable("AUDIT_LOG_WITNESS_QUORUM", None, ge=1)

    @field_validator("signing_key")
    @classmethod
    def _usable_signing_key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if key and key != key.strip():
            raise ConfigError(
                "AUDIT_SIGNING_KEY",
                "starts or ends with whitespace (a newline from a key file?): remove it. A "
                "key is used exactly as given, and rotated keys and key files are read "
                "trimmed, so it would sign under a key id nothing else can verify",
            )
        # Readers may run without the key (an auditor with the signed log's verifier key),
        # but a key that is set must still be a usable one.
        if key and len(key.encode("utf-8")) < MIN_SIGNING_KEY_BYTES:
            raise ConfigError(
                "AUDIT_SIGNING_KEY", f"is too short: at least {MIN_SIGNING_KEY_BYTES} bytes needed"
            )
        return value

    @field_validator("previous_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return key_list(value, ",") if isinstance(value, str) else value

    @field_validator("log_signing_key")
    @classmethod
    def _a_signer_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_signer(value.get_secret_value(), "AUDIT_LOG_SIGNING_KEY")
        return value

    @field_validator("log_verifier_key")
    @classmethod
    def _a_verifier_key(cls, value: str | None) -> str | None:
        if value is not None:
            parse_verifier(value, "AUDIT_LOG_VERIFIER_KEY")
        return value

    @field_validator("log_witness_list")
    @classmethod
    def _witness_entries(cls, value: str | None) -> str | None:
        if value is not None:
            parse_witness_list(value, "AUDIT_LOG_WITNESSES")
        return value

    @model_validator(mode="after")
    def _witnesses_need_the_log(self) -> Keys:
        """The witnesses need the log's signer key (the archive submits) or its verifier
        key (readers check the cosignatures); the quorum is 1 to their number."""
        n = len(self.log_witnesses)
        if self.witness_quorum is not None and not 1 <= self.witness_quorum <= n:
            raise ConfigError(
                "AUDIT_LOG_WITNESS_QUORUM",
                f"must be from 1 to the number of AUDIT_LOG_WITNESSES ({n}), got "
                f"{self.witness_quorum}",
            )
        if n and self.log_signing_key is None and not self.log_verifier_key:
            raise ConfigError(
                "AUDIT_LOG_WITNESSES",
                "needs the signed log: set AUDIT_LOG_SIGNING_KEY (the archive, whose "
                "checkpoints witnesses cosign) or AUDIT_LOG_VERIFIER_KEY (readers that check "
                "cosignatures)",
            )
        return self

    @cached_property
    def log_witnesses(self) -> tuple[WitnessEndpoint, ...]:
        text = self.log_witness_list or ""
        return parse_witness_list(text, "AUDIT_LOG_WITNESSES")

    @property
    def log_witness_quorum(self) -> int:
        """How many must cosign: AUDIT_LOG_WITNESS_QUORUM, default all (0 without any)."""
        if self.witness_quorum is not None:
            return self.witness_quorum
        return len(self.log_witnesses)

    @model_validator(mode="after")
    def _keys_agree(self) -> Keys:
        signer = self.log_signer
        if signer is not None and self.log_verifier_key and self.log_verifier != signer.verifier:
            raise ConfigError(
                "AUDIT_LOG_VERIFIER_KEY",
                "is not the verifier key of AUDIT_LOG_SIGNING_KEY (leave it empty: the archive "
                "derives it)",
            )
        return self

    @property
    def verification_keys(self) -> tuple[str, ...]:
        """The current and previous keys, as text (signature checks need the bytes)."""
        keys = (self.signing_key, *self.previous_keys)
        return tuple(k.get_secret_value() for k in keys if k.get_secret_value())

    @cached_property
    def log_signer(self) -> Signer | None:
        key = self.log_signing_key
        return None if key is None else parse_signer(key.get_secret_value())

    @cached_property
    def log_verifier(self) -> Verifier | None:
        if self.log_verifier_key:
            return parse_verifier(self.log_verifier_key)
        return None if self.log_signer is None else self.log_signer.verifier


def verification_keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The current and previous keys, read as Settings reads them, for readers that need
    nothing else of the configuration (check-proof runs without MongoDB or S3)."""
    return Keys.read(env).verification_keys


def keys_from_file(path: str) -> tuple[str, ...]:
    """A key file: one key per line, each line without surrounding whitespace (so the
    file's final newline and CRLF line ends are no part of a key), blank lines skipped."""
    return key_list(read_text_file(path, "--key-file"), "\n")


# -- everything a run needs ------------------------------------------------------------------


class Settings(DayWindow, Keys):
    """Everything a run needs (the window and the keys above, and the stores); secrets are
    kept out of repr. The order is the order an operator reads the README's tables."""

    mongodb_uri: str = credential("MONGODB_URI", "mongodb://127.0.0.1:27017/dezky")
    events_collection: str = variable("AUDIT_EVENTS_COLLECTION", "auditevents")
    batches_collection: str = variable("AUDIT_BATCHES_COLLECTION", "archivebatches")
    cold_endpoint: str | None = variable("AUDIT_COLD_ENDPOINT", None)
    cold_region: str = variable("AUDIT_COLD_REGION", "us-east-1")
    cold_bucket: str = variable("AUDIT_COLD_BUCKET", "dezky-audit")
    # Set to nothing (or only slashes) is refused rather than read as the default: the
    # SPEC's layout always has a prefix, and an operator who cleared it meant something.
    cold_prefix: str = Field("audit", alias="AUDIT_COLD_PREFIX", json_schema_extra={"blank": True})
    cold_access_key: str | None = credential("AUDIT_COLD_ACCESS_KEY", None)
    cold_secret_key: SecretStr | None = secret("AUDIT_COLD_SECRET_KEY", None)
    cold_sse: Flag = variable("AUDIT_COLD_SSE", False)
    object_lock_mode: str | None = variable("AUDIT_COLD_OBJECT_LOCK_MODE", None)
    object_lock_days: Whole | None = variable("AUDIT_COLD_OBJECT_LOCK_DAYS", None, ge=1, le=36500)
    part_size_mib: Whole = variable("AUDIT_COLD_PART_SIZE_MIB", 64, ge=MIN_PART_SIZE_MIB, le=5120)
    cold_confirm: str = variable("AUDIT_COLD_CONFIRM", "auto")
    # true: run on a store that ignores conditional writes (the start-up probe is skipped).
    cold_accept_unconditional: Flag = variable("AUDIT_COLD_ACCEPT_UNCONDITIONAL_WRITES", False)
    purge_batch_size: Whole = variable("AUDIT_PURGE_BATCH_SIZE", 5000, ge=1, le=100_000)
    lease_seconds: Whole = variable("AUDIT_LEASE_SECONDS", 60, ge=5, le=86400)
    # The longest a run may hold a day's lease (deploy/dagster.yaml's max_runtime_seconds):
    # verify takes an older lease for no run's (hot_checks.implausible_lease).
    run_max_seconds: Whole = variable("AUDIT_RUN_MAX_SECONDS", 21600, ge=60, le=30 * 86400)
    work_dir: str | None = variable("AUDIT_WORK_DIR", None)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, require_signing_key: bool = True
    ) -> Settings:
        """Every variable read and checked; the first bad one raises, named. Readers may
        run without the signing key (an auditor with the signed log's verifier key)."""
        settings = cls.read(env)
        if require_signing_key and not settings.signing_key.get_secret_value():
            raise ConfigError("AUDIT_SIGNING_KEY", "is required (an HMAC key of at least 32 bytes)")
        return settings

    @field_validator("mongodb_uri")
    @classmethod
    def _names_a_database(cls, value: str) -> str:
        database_from_uri(value)
        return value

    @field_validator("events_collection", "batches_collection")
    @classmethod
    def _a_collection(cls, value: str) -> str:
        if not is_collection_name(value):
            raise ValueError(f"{value!r} is not a valid collection name")
        return value

    @field_validator("cold_endpoint")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("cold_bucket")
    @classmethod
    def _a_bucket(cls, value: str) -> str:
        if not _BUCKET.match(value) or ".." in value:
            raise ValueError(f"{value!r} is not a valid S3 bucket name")
        return value

    @field_validator("cold_prefix")
    @classmethod
    def _a_prefix(cls, value: str) -> str:
        prefix = value.strip().strip("/")
        if not prefix:
            raise ValueError(
                "is empty: objects are kept under a prefix (SPEC section 3); unset the "
                "variable for the default 'audit' or name a prefix"
            )
        return prefix

    @field_validator("object_lock_mode")
    @classmethod
    def _a_lock_mode(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in ("GOVERNANCE", "COMPLIANCE"):
            raise ValueError("must be GOVERNANCE, COMPLIANCE or empty")
        return None if value is None else value.upper()

    @field_validator("cold_confirm")
    @classmethod
    def _a_confirm_mode(cls, value: str) -> str:
        if value.lower() not in CONFIRM_MODES:
            raise ValueError(f"must be one of {', '.join(CONFIRM_MODES)}, got {value.lower()!r}")
        return value.lower()

    @model_validator(mode="before")
    @classmethod
    def _lock_days_only_with_a_mode(cls, values: Any) -> Any:
        """Without a lock mode the days are not used (and not checked)."""
        mode = ("AUDIT_COLD_OBJECT_LOCK_MODE", "object_lock_mode")
        days = ("AUDIT_COLD_OBJECT_LOCK_DAYS", "object_lock_days")
        if isinstance(values, dict) and not any(values.get(k) for k in mode):
            return {k: v for k, v in values.items() if k not in days}
        return values

    @model_validator(mode="after")
    def _stores_agree(self) -> Settings:
        if self.events_collection == self.batches_collection:
            raise ConfigError(
                "AUDIT_BATCHES_COLLECTION", "must differ from AUDIT_EVENTS_COLLECTION"
            )
        if bool(self.cold_access_key) != bool(self.cold_secret_key):
            missing = "AUDIT_COLD_SECRET_KEY" if self.cold_access_key else "AUDIT_COLD_ACCESS_KEY"
            raise ConfigError(
                missing, "set both AUDIT_COLD_ACCESS_KEY and AUDIT_COLD_SECRET_KEY, or neither"
            )
        if self.object_lock_mode and self.object_lock_days is None:
            raise ConfigError(
                "AUDIT_COLD_OBJECT_LOCK_DAYS", "required when AUDIT_COLD_OBJECT_LOCK_MODE is set"
            )
        return self

    @property
    def database(self) -> str:
        return database_from_uri(self.mongodb_uri)

    @property
    def part_size_bytes(self) -> int:
        return self.part_size_mib << 20

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be shown: for redact()."""
        out = [*self.verification_keys]
        if self.cold_secret_key is not None:
            out.append(self.cold_secret_key.get_secret_value())
        if self.log_signer is not None:
            out.append(self.log_signer.key_string)
        password = uri_password(self.mongodb_uri)
        if password:
            out.append(password)
        return tuple(out)


# -- the declaration, for the resources, the docs and the deployment ------------------------

VARIABLES: dict[str, FieldInfo] = declared(DefinitionSettings, Settings)

DEFAULTS: dict[str, str] = {name: env_text(f.default) for name, f in VARIABLES.items()}
# Never shown anywhere, and empty placeholders in .env.example.
SECRET_VARIABLES: tuple[str, ...] = tuple(n for n, f in VARIABLES.items() if is_kind(f, "secret"))
# Those that may be read from the file named by <name>_FILE (secrets and credentials).
FILE_VARIABLES: tuple[str, ...] = tuple(n for n, f in VARIABLES.items() if is_kind(f, "file"))

# SPEC section 5, the data contract's variables (the project's own copy, for the tests that
# check the docs and the deployment name each one). AUDIT_LOG_* belong to the signed log of
# manifests (SPEC section 7); the others are read above.
SPEC_VARIABLES: tuple[str, ...] = (
    "MONGODB_URI",
    "AUDIT_EVENTS_COLLECTION",
    "AUDIT_BATCHES_COLLECTION",
    "AUDIT_COLD_ENDPOINT",
    "AUDIT_COLD_REGION",
    "AUDIT_COLD_BUCKET",
    "AUDIT_COLD_PREFIX",
    "AUDIT_COLD_ACCESS_KEY",
    "AUDIT_COLD_SECRET_KEY",
    "AUDIT_COLD_SSE",
    "AUDIT_HOT_RETENTION_DAYS",
    "AUDIT_SIGNING_KEY",
    "AUDIT_SIGNING_KEYS_PREVIOUS",
    "AUDIT_LOG_SIGNING_KEY",
    "AUDIT_LOG_VERIFIER_KEY",
    "AUDIT_LOG_WITNESSES",
    "AUDIT_LOG_WITNESS_QUORUM",
    "ARCHIVE_ENABLED",
    "ARCHIVE_RUN_HOUR_UTC",
    "ARCHIVE_START_DATE",
)

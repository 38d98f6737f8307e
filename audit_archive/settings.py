"""Environment -> validated settings. Pure: no I/O, no clients.

Two groups, read at different moments (SPEC section 6): ``DefinitionSettings`` shape the
Dagster definitions and are read when the code location loads; ``Settings`` (connections
and secrets) are read when a run starts, so one process can serve any environment.
Every problem raises ConfigError naming the variable, never echoing a secret.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from audit_archive.errors import ConfigError
from audit_archive.format.layout import parse_day
from audit_archive.format.note import Signer, Verifier, parse_signer, parse_verifier

MIN_SIGNING_KEY_BYTES = 32
MIN_PART_SIZE_MIB = 5  # S3's floor for every multipart part but the last
# How uploads are confirmed (stores.cold.ConfirmMode): the server's checksum when it keeps
# one, else a read-back; only the checksum; or always a read-back.
CONFIRM_MODES = ("auto", "checksum", "readback")

DEFAULTS: dict[str, str] = {
    "MONGODB_URI": "mongodb://127.0.0.1:27017/dezky",
    "AUDIT_EVENTS_COLLECTION": "auditevents",
    "AUDIT_BATCHES_COLLECTION": "archivebatches",
    "AUDIT_COLD_ENDPOINT": "",
    "AUDIT_COLD_REGION": "us-east-1",
    "AUDIT_COLD_BUCKET": "dezky-audit",
    "AUDIT_COLD_PREFIX": "audit",
    "AUDIT_COLD_ACCESS_KEY": "",
    "AUDIT_COLD_SECRET_KEY": "",
    "AUDIT_COLD_SSE": "false",
    "AUDIT_COLD_OBJECT_LOCK_MODE": "",
    "AUDIT_COLD_OBJECT_LOCK_DAYS": "",
    "AUDIT_COLD_PART_SIZE_MIB": "64",
    "AUDIT_COLD_CONFIRM": "auto",
    "AUDIT_COLD_ACCEPT_UNCONDITIONAL_WRITES": "false",
    "AUDIT_HOT_RETENTION_DAYS": "90",
    "AUDIT_SIGNING_KEY": "",
    "AUDIT_SIGNING_KEYS_PREVIOUS": "",
    "AUDIT_LOG_SIGNING_KEY": "",
    "AUDIT_LOG_VERIFIER_KEY": "",
    "AUDIT_PURGE_BATCH_SIZE": "5000",
    "AUDIT_LEASE_SECONDS": "60",
    "AUDIT_WORK_DIR": "",
    "ARCHIVE_ENABLED": "false",
    "ARCHIVE_RUN_HOUR_UTC": "3",
    "ARCHIVE_START_DATE": "2024-01-01",
}

SECRET_VARIABLES = (
    "AUDIT_SIGNING_KEY",
    "AUDIT_SIGNING_KEYS_PREVIOUS",
    "AUDIT_COLD_SECRET_KEY",
    "AUDIT_LOG_SIGNING_KEY",
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_COLLECTION = re.compile(r"^[^$\x00]+$")


def is_collection_name(value: str) -> bool:
    """A name MongoDB accepts for a collection the archive reads or writes (no "$", no
    NUL, not empty or blank, not a system collection): one rule for the configured
    collections and restore's target."""
    return (
        bool(_COLLECTION.match(value)) and bool(value.strip()) and not value.startswith("system.")
    )


def _get(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    return DEFAULTS[name] if value is None or value.strip() == "" else value.strip()


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = _get(env, name).lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(name, f"expected true or false, got {value!r}")


def _int(env: Mapping[str, str], name: str, lo: int, hi: int | None = None) -> int:
    raw = _get(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        bounds = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        raise ConfigError(name, f"must be {bounds}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _get(env, name).lower()
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _day(env: Mapping[str, str], name: str) -> dt.date:
    try:
        return parse_day(_get(env, name))
    except ValueError as e:
        raise ConfigError(name, str(e)) from None


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


@dataclass(frozen=True)
class DefinitionSettings:
    """Variables that shape the Dagster definitions (read when the code location loads)."""

    start_date: dt.date
    run_hour_utc: int
    enabled: bool
    retention_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DefinitionSettings:
        env = os.environ if env is None else env
        return cls(
            start_date=_day(env, "ARCHIVE_START_DATE"),
            run_hour_utc=_int(env, "ARCHIVE_RUN_HOUR_UTC", 0, 23),
            enabled=_bool(env, "ARCHIVE_ENABLED"),
            retention_days=_int(env, "AUDIT_HOT_RETENTION_DAYS", 0, 36500),
        )


@dataclass(frozen=True)
class Settings:
    """Everything a run needs; secrets are kept out of repr."""

    mongodb_uri: str = field(repr=False)
    database: str
    events_collection: str
    batches_collection: str
    cold_endpoint: str | None
    cold_region: str
    cold_bucket: str
    cold_prefix: str
    cold_access_key: str | None = field(repr=False)
    cold_secret_key: str | None = field(repr=False)
    cold_sse: bool
    object_lock_mode: str | None
    object_lock_days: int | None
    part_size_bytes: int
    cold_confirm: str
    retention_days: int
    signing_key: str = field(repr=False)
    previous_keys: tuple[str, ...] = field(repr=False)
    purge_batch_size: int
    lease_seconds: int
    work_dir: str | None
    start_date: dt.date
    # The signed log (SPEC section 7): the signer switches it on; readers need only the
    # verifier (AUDIT_LOG_VERIFIER_KEY, or derived from the signer).
    log_signer: Signer | None = field(default=None, repr=False)
    log_verifier: Verifier | None = None
    # true: run on a store that ignores conditional writes (start-up probe skipped).
    cold_accept_unconditional: bool = False

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, require_signing_key: bool = True
    ) -> Settings:
        """Every variable read and checked, in the order an operator reads the table."""
        env = os.environ if env is None else env
        uri = _get(env, "MONGODB_URI")
        events, batches = _collections(env)
        signing_key, previous_keys = _signing_keys(env, required=require_signing_key)
        return cls(
            mongodb_uri=uri,
            database=database_from_uri(uri),
            events_collection=events,
            batches_collection=batches,
            **_cold_storage(env),
            retention_days=_int(env, "AUDIT_HOT_RETENTION_DAYS", 0, 36500),
            signing_key=signing_key,
            previous_keys=previous_keys,
            purge_batch_size=_int(env, "AUDIT_PURGE_BATCH_SIZE", 1, 100_000),
            lease_seconds=_int(env, "AUDIT_LEASE_SECONDS", 5, 86400),
            work_dir=_get(env, "AUDIT_WORK_DIR") or None,
            start_date=_day(env, "ARCHIVE_START_DATE"),
            **log_keys(env),
        )

    @property
    def verification_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.signing_key, *self.previous_keys) if k)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be shown: for redact()."""
        out = [*self.verification_keys]
        if self.cold_secret_key:
            out.append(self.cold_secret_key)
        if self.log_signer is not None:
            out.append(self.log_signer.key_string)
        password = uri_password(self.mongodb_uri)
        if password:
            out.append(password)
        return tuple(out)


# -- the parts of Settings.from_env -------------------------------------------------------


def _collections(env: Mapping[str, str]) -> tuple[str, str]:
    """The events and batches collections: valid names, and not the same one."""
    events = _get(env, "AUDIT_EVENTS_COLLECTION")
    batches = _get(env, "AUDIT_BATCHES_COLLECTION")
    for name, value in (("AUDIT_EVENTS_COLLECTION", events), ("AUDIT_BATCHES_COLLECTION", batches)):
        if not is_collection_name(value):
            raise ConfigError(name, f"{value!r} is not a valid collection name")
    if events == batches:
        raise ConfigError("AUDIT_BATCHES_COLLECTION", "must differ from AUDIT_EVENTS_COLLECTION")
    return events, batches


def _cold_storage(env: Mapping[str, str]) -> dict[str, Any]:
    """The S3 side: where, as whom, and how objects are written (Settings' cold_* fields)."""
    endpoint = _get(env, "AUDIT_COLD_ENDPOINT") or None
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError("AUDIT_COLD_ENDPOINT", "must be an http:// or https:// URL")
    bucket = _get(env, "AUDIT_COLD_BUCKET")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError("AUDIT_COLD_BUCKET", f"{bucket!r} is not a valid S3 bucket name")
    access = _get(env, "AUDIT_COLD_ACCESS_KEY") or None
    secret = _get(env, "AUDIT_COLD_SECRET_KEY") or None
    if bool(access) != bool(secret):
        missing = "AUDIT_COLD_SECRET_KEY" if access else "AUDIT_COLD_ACCESS_KEY"
        raise ConfigError(
            missing, "set both AUDIT_COLD_ACCESS_KEY and AUDIT_COLD_SECRET_KEY, or neither"
        )
    lock_mode, lock_days = _object_lock(env)
    return {
        "cold_endpoint": endpoint,
        "cold_region": _get(env, "AUDIT_COLD_REGION"),
        "cold_bucket": bucket,
        "cold_prefix": _cold_prefix(env),
        "cold_access_key": access,
        "cold_secret_key": secret,
        "cold_sse": _bool(env, "AUDIT_COLD_SSE"),
        "object_lock_mode": lock_mode,
        "object_lock_days": lock_days,
        "part_size_bytes": _int(env, "AUDIT_COLD_PART_SIZE_MIB", MIN_PART_SIZE_MIB, 5120) << 20,
        "cold_confirm": _choice(env, "AUDIT_COLD_CONFIRM", CONFIRM_MODES),
        "cold_accept_unconditional": _bool(env, "AUDIT_COLD_ACCEPT_UNCONDITIONAL_WRITES"),
    }


def _cold_prefix(env: Mapping[str, str]) -> str:
    """The key prefix, without surrounding slashes. Unset means the default; set to
    nothing (or only slashes) is refused rather than silently read as the default: the
    SPEC's layout always has a prefix, and an operator who cleared it meant something."""
    raw = env.get("AUDIT_COLD_PREFIX")
    if raw is None:
        return DEFAULTS["AUDIT_COLD_PREFIX"]
    prefix = raw.strip().strip("/")
    if not prefix:
        raise ConfigError(
            "AUDIT_COLD_PREFIX",
            "is empty: objects are kept under a prefix (SPEC section 3); unset the variable "
            f"for the default {DEFAULTS['AUDIT_COLD_PREFIX']!r} or name a prefix",
        )
    return prefix


def _object_lock(env: Mapping[str, str]) -> tuple[str | None, int | None]:
    """(mode, days) of S3 Object Lock retention, or (None, None) without it."""
    lock_mode = _get(env, "AUDIT_COLD_OBJECT_LOCK_MODE").upper() or None
    if lock_mode is None:
        return None, None
    if lock_mode not in ("GOVERNANCE", "COMPLIANCE"):
        raise ConfigError("AUDIT_COLD_OBJECT_LOCK_MODE", "must be GOVERNANCE, COMPLIANCE or empty")
    if not _get(env, "AUDIT_COLD_OBJECT_LOCK_DAYS"):
        raise ConfigError(
            "AUDIT_COLD_OBJECT_LOCK_DAYS", "required when AUDIT_COLD_OBJECT_LOCK_MODE is set"
        )
    return lock_mode, _int(env, "AUDIT_COLD_OBJECT_LOCK_DAYS", 1, 36500)


# -- signing keys ---------------------------------------------------------------------------
# One rule everywhere a key is read: a key is the exact UTF-8 bytes of its value and never
# starts or ends with whitespace. AUDIT_SIGNING_KEY signs, so one with surrounding whitespace
# (what `$(cat key)` avoids and a key file's newline gives) is refused: trimming it silently
# would change the key id of every manifest it signs, and keeping it made a key that verified
# as the current key but no longer once rotated or read from a key file, which trim. Lists of
# keys (AUDIT_SIGNING_KEYS_PREVIOUS, a --key-file) take each entry without its surrounding
# whitespace, so "k1, k2" and a file's line endings name the keys k1, k2.


def _signing_keys(env: Mapping[str, str], *, required: bool) -> tuple[str, tuple[str, ...]]:
    """(AUDIT_SIGNING_KEY, AUDIT_SIGNING_KEYS_PREVIOUS), checked, never echoed."""
    key = current_signing_key(env)
    if required and not key:
        raise ConfigError("AUDIT_SIGNING_KEY", "is required (an HMAC key of at least 32 bytes)")
    # Readers may run without the key (an auditor with the signed log's verifier key),
    # but a key that is set must still be a usable one.
    if key and len(key.encode("utf-8")) < MIN_SIGNING_KEY_BYTES:
        raise ConfigError(
            "AUDIT_SIGNING_KEY", f"is too short: at least {MIN_SIGNING_KEY_BYTES} bytes needed"
        )
    return key, key_list(env.get("AUDIT_SIGNING_KEYS_PREVIOUS") or "", ",")


def current_signing_key(env: Mapping[str, str]) -> str:
    """AUDIT_SIGNING_KEY as is ("" when unset), refused if surrounded by whitespace."""
    key = env.get("AUDIT_SIGNING_KEY") or ""
    if key and key != key.strip():
        raise ConfigError(
            "AUDIT_SIGNING_KEY",
            "starts or ends with whitespace (a newline from a key file?): remove it. A key "
            "is used exactly as given, and rotated keys and key files are read trimmed, so "
            "it would sign under a key id nothing else can verify",
        )
    return key


def key_list(text: str, separator: str) -> tuple[str, ...]:
    """Keys separated by ``separator``, each without surrounding whitespace, blanks skipped."""
    return tuple(k.strip() for k in text.split(separator) if k.strip())


def verification_keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The current and previous keys, read as Settings reads them, for readers that need
    nothing else of the configuration (check-proof runs without MongoDB or S3)."""
    key, previous = _signing_keys(os.environ if env is None else env, required=False)
    return tuple(k for k in (key, *previous) if k)


def keys_from_file(path: str) -> tuple[str, ...]:
    """A key file: one key per line, each line without surrounding whitespace (so the
    file's final newline and CRLF line ends are no part of a key), blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ConfigError("--key-file", f"cannot read {path}: {reason}") from None
    return key_list(text, "\n")


def log_keys(env: Mapping[str, str]) -> dict[str, Any]:
    """The signed log's keys: a bad key string is a ConfigError naming its variable (the
    key is never echoed); a verifier that is not the signer's own is refused."""
    signer_text = (env.get("AUDIT_LOG_SIGNING_KEY") or "").strip()
    verifier_text = (env.get("AUDIT_LOG_VERIFIER_KEY") or "").strip()
    signer = parse_signer(signer_text, "AUDIT_LOG_SIGNING_KEY") if signer_text else None
    verifier = parse_verifier(verifier_text, "AUDIT_LOG_VERIFIER_KEY") if verifier_text else None
    if signer is not None:
        if verifier is not None and verifier != signer.verifier:
            raise ConfigError(
                "AUDIT_LOG_VERIFIER_KEY",
                "is not the verifier key of AUDIT_LOG_SIGNING_KEY (leave it empty: the archive "
                "derives it)",
            )
        verifier = signer.verifier
    return {"log_signer": signer, "log_verifier": verifier}


def uri_password(uri: str) -> str | None:
    m = re.match(r"^mongodb(?:\+srv)?://[^:@/]*:([^@/]*)@", uri)
    return unquote(m.group(1)) if m else None


# SPEC section 5, the data contract's variables (the project's own copy, for the tests that
# check the docs and the deployment name each one). AUDIT_LOG_* belong to the signed log of
# manifests (SPEC section 7); the others are read above, with the project's own in DEFAULTS.
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
    "ARCHIVE_ENABLED",
    "ARCHIVE_RUN_HOUR_UTC",
    "ARCHIVE_START_DATE",
)

"""Build the Mongo and S3 clients from Settings, and check them before any work.

Used by the Dagster resources and the CLI alike, so both fail the same way: a
ConfigError that names the variable and never echoes a secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pymongo
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pymongo import MongoClient
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from audit_archive.errors import ConfigError
from audit_archive.format.layout import probe_key
from audit_archive.redact import redact
from audit_archive.settings import Settings
from audit_archive.stores import conditional
from audit_archive.stores.batches import BatchStore
from audit_archive.stores.cold import BucketProblem, ColdStore, ConfirmMode
from audit_archive.stores.collection_kind import events_collection_problem, transactions_problem
from audit_archive.stores.database import HotDatabase
from audit_archive.stores.events import EventStore
from audit_archive.stores.leasestore import LeaseStore
from audit_archive.stores.logstore import LogStore
from audit_archive.stores.privileges import Access
from audit_archive.stores.restore_target import RestoreTarget

AUTHENTICATION_FAILED = 18
MONGO_TIMEOUT_MS = 5000  # start-up check and connection attempts: fail fast when misconfigured
# Also the socket timeout of pymongo's heartbeats: one that times out clears the pool and
# cancels operations in flight (_OperationCancelled). A server busy for more than 5 s
# with one long request (SecantusDB reading a million-event day) then failed the run;
# the start-up check keeps its own 5 s limit (pymongo.timeout in check_stores).
MONGO_CONNECT_TIMEOUT_MS = 30_000


def mongo_client(settings: Settings) -> MongoClient:
    # serverSelectionTimeoutMS stays at pymongo's 30 s default (unless the URI sets it):
    # a retryable error (a primary stepping down, a dropped connection) is retried once
    # after selecting a server again, and an election takes ~10 s. A 5 s selection
    # timeout would turn every election during a run into a failed run. The start-up
    # check still fails fast (pymongo.timeout in check_stores).
    try:
        return MongoClient(
            settings.mongodb_uri,
            connectTimeoutMS=MONGO_CONNECT_TIMEOUT_MS,
            retryReads=True,
            retryWrites=True,
            appname="audit-archive",
        )
    except (ConfigurationError, ValueError) as e:
        raise ConfigError("MONGODB_URI", redact(str(e), settings.secrets)) from None


# One botocore session per process: it caches the parsed service models, which costs
# most of a second to load per new session. Creating clients from it is guarded because
# sessions are not thread-safe (the clients are).
_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def s3_client(settings: Settings):  # -> botocore S3 client
    config = Config(
        region_name=settings.cold_region,
        retries={"max_attempts": 8, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path" if settings.cold_endpoint else "auto"},
        # We send SHA-256 checksums ourselves; do not add CRC32 trailers that some
        # S3-compatible servers reject.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION.client(
            "s3",
            endpoint_url=settings.cold_endpoint,
            aws_access_key_id=settings.cold_access_key,
            aws_secret_access_key=(
                settings.cold_secret_key.get_secret_value() if settings.cold_secret_key else None
            ),
            config=config,
        )


@dataclass
class Stores:
    """Both tiers, opened from one Settings: each role of the hot database by name."""

    hot: HotDatabase
    cold: ColdStore
    settings: Settings

    @property
    def events(self) -> EventStore:
        return self.hot.events

    @property
    def batches(self) -> BatchStore:
        return self.hot.batches

    @property
    def leases(self) -> LeaseStore:
        return self.hot.leases

    @property
    def log(self) -> LogStore:
        return self.hot.log

    @property
    def restore_target(self) -> RestoreTarget:
        return self.hot.restore_target

    def close(self) -> None:
        self.hot.close()


def hot_database(settings: Settings, client: MongoClient | None = None) -> HotDatabase:
    """The hot database ``settings`` name, on ``client`` (by default a new one)."""
    return HotDatabase(
        client or mongo_client(settings),
        settings.database,
        settings.events_collection,
        settings.batches_collection,
    )


def open_stores(
    settings: Settings, *, check: bool = True, access: Access = Access.ARCHIVE
) -> Stores:
    """Clients for both tiers; with ``check``, prove both are reachable and usable for
    ``access``: the archive job's privileges unless a reader says it only reads."""
    hot = hot_database(settings)
    cold = ColdStore(
        s3_client(settings),
        settings.cold_bucket,
        sse=settings.cold_sse,
        lock_mode=settings.object_lock_mode,
        lock_days=settings.object_lock_days,
        part_size=settings.part_size_bytes,
        confirm_mode=ConfirmMode(settings.cold_confirm),
    )
    stores = Stores(hot, cold, settings)
    if check:
        try:
            check_stores(stores, access)
        except BaseException:
            stores.close()
            raise
    return stores


# The variable an operator changes for each kind of bucket problem.
_BUCKET_VARIABLE = {
    BucketProblem.MISSING: "AUDIT_COLD_BUCKET",
    BucketProblem.UNUSABLE: "AUDIT_COLD_BUCKET",
    BucketProblem.DENIED: "AUDIT_COLD_ACCESS_KEY",
    BucketProblem.NO_OBJECT_LOCK: "AUDIT_COLD_OBJECT_LOCK_MODE",
}


def check_stores(stores: Stores, access: Access = Access.ARCHIVE) -> None:
    """Both tiers reachable, and usable for ``access``: a ConfigError naming the variable
    otherwise, before any work, never echoing a secret."""
    _check_hot(stores, access)
    _check_cold(stores)
    if access is Access.ARCHIVE:
        _check_conditional_writes(stores)


def _check_hot(stores: Stores, access: Access) -> None:
    secrets = stores.settings.secrets
    try:
        with pymongo.timeout(MONGO_TIMEOUT_MS / 1000):
            stores.hot.ping()
            missing = stores.hot.missing_privileges(access, signed_log=_signed_log(stores, access))
            anonymous = bool(missing) and not stores.hot.authenticated()
            kind = (
                events_collection_problem(stores.events.collection)
                if access is Access.ARCHIVE
                else None
            )
            standalone = (
                transactions_problem(stores.hot.client) if access is Access.ARCHIVE else None
            )
    except OperationFailure as e:
        if e.code == AUTHENTICATION_FAILED:
            raise ConfigError(
                "MONGODB_URI", "authentication failed: check the user and password in the URI"
            ) from None
        raise ConfigError("MONGODB_URI", redact(f"MongoDB refused: {e}", secrets)) from None
    except PyMongoError as e:
        raise ConfigError(
            "MONGODB_URI", redact(f"MongoDB is not reachable: {type(e).__name__}", secrets)
        ) from None
    if anonymous:
        raise ConfigError(
            "MONGODB_URI",
            "MongoDB requires authentication: put the archive's user and password in the URI",
        )
    if standalone is not None:
        raise ConfigError("MONGODB_URI", standalone)
    if kind is not None:
        raise ConfigError("AUDIT_EVENTS_COLLECTION", kind)
    if missing:
        raise ConfigError(
            "MONGODB_URI",
            f"the user lacks privileges the {access} needs: {'; '.join(missing)}. Grant "
            "them (deploy/mongo/archive-role.json, or readWrite on the database); see "
            "docs/security.md",
        )


def _signed_log(stores: Stores, access: Access) -> bool:
    """Whether this use touches the signed log's collection: the archive appends to it
    when a signer key is set; readers read it when they verify with the log."""
    settings = stores.settings
    key = settings.log_signer if access is Access.ARCHIVE else settings.log_verifier
    return key is not None


def _check_cold(stores: Stores) -> None:
    secrets = stores.settings.secrets
    try:
        problem = stores.cold.bucket_error()
    except EndpointConnectionError:
        raise ConfigError(
            "AUDIT_COLD_ENDPOINT",
            # redact: an endpoint may carry userinfo (http://user:secret@host)
            redact(f"S3 endpoint {stores.settings.cold_endpoint} is not reachable", secrets),
        ) from None
    except (BotoCoreError, ClientError) as e:
        raise ConfigError("AUDIT_COLD_ENDPOINT", redact(f"S3 error: {e}", secrets)) from None
    if problem is not None:
        raise ConfigError(_BUCKET_VARIABLE[problem.problem], problem.message)


# Stores already probed in this process: (endpoint, bucket, prefix). A run opens its
# stores more than once; the store's behaviour does not change between them.
_PROBED: set[tuple[str | None, str, str]] = set()
# Runs that start together probe one at a time: in one process (threads, a backfill run
# in process) the first proves the store and the others find it proven; across processes
# (each run worker of a backfill is its own process, and proves the store again) a file
# lock in the staging folder makes them take turns. Concurrent multipart probes of one
# key made moto's server answer UploadPart with 500 (test_races; and a catch-up of 30 days
# through the daemon, 4 run workers starting at once, failed one day that way).
_PROBE_LOCK = threading.Lock()
# How long a run waits for another process's probe before probing anyway: a process
# stalled (SIGSTOP) while holding the lock must not hold every later run's start.
PROBE_LOCK_WAIT_SECONDS = 60.0
ACCEPT_UNCONDITIONAL = "AUDIT_COLD_ACCEPT_UNCONDITIONAL_WRITES"


def _check_conditional_writes(stores: Stores) -> None:
    """The archive's promise that evidence is written once rests on the store refusing
    conditional writes (stores.conditional). One that ignores them is refused here,
    before any work, unless the operator accepted the risk (ACCEPT_UNCONDITIONAL)."""
    settings = stores.settings
    where = (settings.cold_endpoint, settings.cold_bucket, settings.cold_prefix)
    if settings.cold_accept_unconditional:
        return
    with _PROBE_LOCK:
        if where not in _PROBED:
            with probe_lock(settings):
                _probe_conditional_writes(stores)
            _PROBED.add(where)


def staging_root(settings: Settings) -> Path:
    """The archive's own folder on this machine (AUDIT_WORK_DIR, else the temporary
    folder): the days' staging files and the start-up probe's lock."""
    return Path(settings.work_dir or tempfile.gettempdir()) / "audit-archive"


def probe_lock_path(settings: Settings) -> Path:
    """The lock file the processes probing one store (endpoint, bucket, prefix) share."""
    where = "\n".join((settings.cold_endpoint or "", settings.cold_bucket, settings.cold_prefix))
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    return staging_root(settings) / f"probe-{digest}.lock"


@contextlib.contextmanager
def probe_lock(settings: Settings) -> Iterator[None]:
    """Held while this process probes the store: another process probing the same store
    waits (at most PROBE_LOCK_WAIT_SECONDS, then probes anyway). Where the folder cannot
    hold the lock (read-only, no fcntl) the probe goes on unlocked: the lock only spares
    the store simultaneous probes, the probe itself proves the store either way."""
    try:
        import fcntl

        path = probe_lock_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - closed below, after the probe
    except (ImportError, OSError):
        handle = None
    if handle is None:
        yield
        return
    with handle:
        deadline = time.monotonic() + PROBE_LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break  # the holder stalled: probe anyway
                time.sleep(0.05)
        yield  # closing the file releases the lock


def _probe_conditional_writes(stores: Stores) -> None:
    """One probe of the store (stores.conditional.probe); a store that ignores the
    conditions, or an S3 error, is a configuration error naming the variable."""
    settings = stores.settings
    key = probe_key(settings.cold_prefix)
    try:
        problem = conditional.probe(stores.cold, key)
    except ClientError as e:
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status not in (400, 501):  # not an answer to the headers: the store's trouble
            raise ConfigError(
                "AUDIT_COLD_ENDPOINT", redact(f"S3 error: {e}", settings.secrets)
            ) from None
        problem = redact(f"it rejected a conditional write: {e}", settings.secrets)
    except BotoCoreError as e:
        raise ConfigError(
            "AUDIT_COLD_ENDPOINT", redact(f"S3 error: {e}", settings.secrets)
        ) from None
    if problem is not None:
        raise ConfigError(
            ACCEPT_UNCONDITIONAL,
            f"the S3 store ignores conditional writes ({problem}, probing {key}): a run that "
            "stalls could overwrite another run's evidence. Use a store that supports "
            "If-None-Match and If-Match (see docs/reliability.md), or set "
            f"{ACCEPT_UNCONDITIONAL}=true to accept the risk",
        )

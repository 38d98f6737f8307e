"""``./dev ui``: the Dagster UI on the embedded stack, with data that survives restarts.

Starts SecantusDB (data in ``<home>/mongo``) and moto's S3 server (objects kept through
its request recording in ``<home>/s3``, see s3_persist.py), seeds the demo history only
when the store is empty, and runs ``dagster dev`` on 127.0.0.1 with ``workspace.yaml``
and ``DAGSTER_HOME=<home>/dagster_home`` (the repo's dagster.yaml copied in at every
start, so run history is kept and the run queue limits are the repo's). ``<home>`` is
``.demo/`` (git-ignored) unless --home or AUDIT_DEV_HOME says otherwise.

Ctrl-C or SIGTERM stops everything it started, children included: ``dagster dev`` runs in
its own process group with the default SIGINT/SIGTERM handlers restored (a process
started from a script in the background inherits "ignore SIGINT", and ``dagster dev``
maps SIGTERM onto its SIGINT handler, so it would ignore both), gets SIGTERM, and
whatever of its group is still alive after a grace period is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from audit_archive.format import layout
from audit_archive_dev.demo import plural
from audit_archive_dev.demowitness import DemoWitness
from audit_archive_dev.embedded import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    ServerProcess,
    _bin,
    port_is_free,
    start_mongo,
)
from audit_archive_dev.logkey import KEY_FILE

REPO = Path(__file__).resolve().parents[1]
DATABASE = "dezky"
BUCKET = "dezky-audit"
RETENTION_DAYS = 90
STOP_GRACE_SECONDS = 20
# Variables the user may set for the UI session; everything else that points the archive
# somewhere is the embedded stack's, whatever the shell holds.
PASS_THROUGH = ("ARCHIVE_ENABLED", "ARCHIVE_RUN_HOUR_UTC")


class Stop(Exception):
    """SIGTERM (or a second Ctrl-C): leave the main loop and clean up."""


class UsageError(Exception):
    pass


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name} must be a port number, got {value!r}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev ui", description="Embedded MongoDB + S3 and the Dagster UI on 127.0.0.1."
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("AUDIT_DEV_HOME") or REPO / ".demo"),
        help="where the data lives between starts (default .demo/; env AUDIT_DEV_HOME)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_int_env("AUDIT_DEV_UI_PORT", 3000),
        help="Dagster UI port (default 3000; env AUDIT_DEV_UI_PORT)",
    )
    parser.add_argument(
        "--mongo-port",
        type=int,
        default=_int_env("AUDIT_DEV_MONGO_PORT", 27018),
        help="embedded MongoDB port (default 27018; env AUDIT_DEV_MONGO_PORT)",
    )
    parser.add_argument(
        "--s3-port",
        type=int,
        default=_int_env("AUDIT_DEV_S3_PORT", 9900),
        help="embedded S3 port (default 9900; env AUDIT_DEV_S3_PORT)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed for the demo data")
    parser.add_argument(
        "--reset", action="store_true", help="delete the data under --home first, then seed anew"
    )
    parser.add_argument(
        "--stack-only",
        action="store_true",
        help="start MongoDB and S3 (and seed) but not Dagster: for the CLI or a debugger",
    )
    return parser.parse_args(argv)


def check_ports(args: argparse.Namespace) -> None:
    """Every port before anything starts, so a clash never leaves half a stack behind."""
    wanted = [("the embedded MongoDB", args.mongo_port, "--mongo-port", "AUDIT_DEV_MONGO_PORT")]
    wanted.append(("the embedded S3 server", args.s3_port, "--s3-port", "AUDIT_DEV_S3_PORT"))
    if not args.stack_only:
        wanted.append(("the Dagster UI", args.port, "--port", "AUDIT_DEV_UI_PORT"))
    seen: set[int] = set()
    for what, port, flag, variable in wanted:
        if not 0 < port < 65536:
            raise UsageError(f"{flag} {port} is not a port number")
        if port in seen:
            raise UsageError(f"{flag} {port} is given to two servers; choose distinct ports")
        seen.add(port)
        if not port_is_free(port):
            raise UsageError(
                f"port {port} for {what} is already in use on 127.0.0.1 (another ./dev ui, "
                f"or another server). Stop it, or pick a free port: {flag} N or {variable}=N."
            )


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """One ./dev ui per data folder: two SecantusDB servers on one folder would corrupt it."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "ui.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise UsageError(
                f"{home} is in use by another ./dev ui (pid {holder}); stop it first, or use "
                "another --home"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


# -- data --------------------------------------------------------------------------------


def archive_env(home: Path, mongo_port: int, s3_port: int, start_date: str) -> dict[str, str]:
    from audit_archive_dev.demo import DEMO_KEY
    from audit_archive_dev.logkey import log_env

    env = {
        "MONGODB_URI": f"mongodb://127.0.0.1:{mongo_port}/{DATABASE}?directConnection=true",
        "AUDIT_EVENTS_COLLECTION": "auditevents",
        "AUDIT_BATCHES_COLLECTION": "archivebatches",
        "AUDIT_COLD_ENDPOINT": f"http://127.0.0.1:{s3_port}",
        "AUDIT_COLD_REGION": "us-east-1",
        "AUDIT_COLD_BUCKET": BUCKET,
        "AUDIT_COLD_PREFIX": "audit",
        "AUDIT_COLD_ACCESS_KEY": S3_ACCESS_KEY,
        "AUDIT_COLD_SECRET_KEY": S3_SECRET_KEY,
        "AUDIT_SIGNING_KEY": DEMO_KEY,
        "AUDIT_HOT_RETENTION_DAYS": str(RETENTION_DAYS),
        "AUDIT_WORK_DIR": str(home / "work"),
        "ARCHIVE_START_DATE": start_date,
        **log_env(home),  # the signed log: a demo key kept in the data folder
    }
    for name in PASS_THROUGH:
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def prepare_data(home: Path, mongo_port: int, seed: int) -> dict[str, Any]:
    """Seed the demo history if the store is empty; return the demo's state (start date)."""
    from pymongo import MongoClient

    from audit_archive_dev.demo import seed_demo

    state_path = home / "state.json"
    client = MongoClient(f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true", tz_aware=True)
    try:
        db = client[DATABASE]
        empty = (
            db.auditevents.estimated_document_count() == 0
            and db.archivebatches.estimated_document_count() == 0
        )
        if empty or not state_path.exists():
            if empty:
                newest_due = layout.newest_due_day(dt.datetime.now(dt.UTC), RETENTION_DAYS)
                seeded = seed_demo(client, DATABASE, newest_due, random.Random(seed))
                state = {
                    "startDate": layout.format_day(seeded["first"]),
                    "seededOn": layout.format_day(dt.datetime.now(dt.UTC).date()),
                    "events": sum(seeded["counts"].values()),
                    "seeded": True,
                }
            else:  # data without state.json (deleted by hand): derive the first day
                state = {"startDate": _first_day(db), "seeded": False}
            state_path.write_text(json.dumps(state, indent=2) + "\n")
            return state
        return {**json.loads(state_path.read_text()), "seeded": False}
    finally:
        client.close()


def _first_day(db) -> str:
    days = [r["day"] for r in db.archivebatches.find({}, {"day": 1}).sort("day", 1).limit(1)]
    days += [
        layout.format_day(e["at"].date())
        for e in db.auditevents.find({}, {"at": 1}).sort("at", 1).limit(1)
    ]
    return min(days) if days else layout.format_day(dt.datetime.now(dt.UTC).date())


def missing_objects(env: dict[str, str]) -> list[str]:
    """Keys named by batch records that the (restored) bucket does not hold."""
    from audit_archive.settings import Settings
    from audit_archive.stores.clients import open_stores

    stores = open_stores(Settings.from_env(env), check=False)
    try:
        missing = []
        for record in stores.batches.records():
            for key in (record.get("jsonlKey"), record.get("manifestKey")):
                if key and stores.cold.head(key) is None:
                    missing.append(key)
        return missing
    finally:
        stores.close()


# -- processes ---------------------------------------------------------------------------


def _default_signals() -> None:
    """In the child, before exec: the default SIGINT/SIGTERM dispositions (see module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_dagster(
    home: Path,
    port: int,
    env: dict[str, str],
    instance_yaml: str | None = None,
    stdout: IO[Any] | None = None,
) -> subprocess.Popen:
    """``dagster dev`` with the repo's dagster.yaml (or ``instance_yaml``, a benchmark's
    variant of it) in ``<home>/dagster_home``; its output on ours, or on ``stdout`` (a
    benchmark whose own stdout is its JSON)."""
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if instance_yaml is None:
        shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    else:
        (dagster_home / "dagster.yaml").write_text(instance_yaml)
    child_env = {**os.environ, **env, "DAGSTER_HOME": str(dagster_home)}
    return subprocess.Popen(
        [
            _bin("dagster"),
            "dev",
            "-w",
            str(REPO / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        # DAGSTER_HOME's folder, not the repo: dagster dev warns about a dagster.yaml in
        # its working directory that is not DAGSTER_HOME's.
        cwd=dagster_home,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        preexec_fn=_default_signals,
        start_new_session=True,  # its own process group: stopped with all its children
    )


def stop_group(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever of it is left."""
    pgid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(max(0.1, deadline - time.monotonic()))
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until_serving(port: int, process: subprocess.Popen, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with (
            contextlib.suppress(Exception),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r,
        ):
            if r.status == 200:
                return True
        time.sleep(0.5)
    return False


def _reset(home: Path) -> None:
    """--reset: forget the data (the witness's state too: a new log is a new history)."""
    for name in ("mongo", "s3", "dagster_home", "work", "state.json", "witness-state.json"):
        target = home / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        check_ports(args)
    except UsageError as e:
        print(f"./dev ui: {e}", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM both end in the clean-up below, even when this process was
    # started with SIGINT ignored (in the background from a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_stop)
    servers: list[ServerProcess] = []
    dagster: subprocess.Popen | None = None
    witness: DemoWitness | None = None
    home: Path = args.home.resolve()
    try:
        with home_lock(home):
            if args.reset:
                _reset(home)
            (home / "logs").mkdir(parents=True, exist_ok=True)
            print(f"starting the embedded MongoDB (SecantusDB, data in {home / 'mongo'}) ...")
            servers.append(
                start_mongo(args.mongo_port, home / "mongo", log_path=home / "logs" / "mongo.log")
            )
            print(f"starting the embedded S3 server (moto, objects kept in {home / 's3'}) ...")
            from audit_archive_dev.s3_persist import start_persistent_s3

            s3, snapshot = start_persistent_s3(
                args.s3_port, home / "s3", log_path=home / "logs" / "s3.log"
            )
            servers.append(s3)
            state = prepare_data(home, args.mongo_port, args.seed)
            env = archive_env(home, args.mongo_port, args.s3_port, state["startDate"])
            witness = DemoWitness(home, env)  # SPEC 8: the head is cosigned before a purge
            env.update(witness.env_entries)
            from audit_archive_dev.embedded import create_bucket

            create_bucket(env["AUDIT_COLD_ENDPOINT"], BUCKET)
            _say_what_data(state, home, snapshot.object_count, env)
            _print_env(env, home)
            if args.stack_only:
                print("stack ready (--stack-only); Ctrl-C stops it", flush=True)
                while all(s.process.poll() is None for s in servers):
                    time.sleep(0.5)
                print("./dev ui: an embedded server exited; stopping", file=sys.stderr)
                return 1
            print(f"starting dagster dev on http://127.0.0.1:{args.port} ...", flush=True)
            dagster = start_dagster(home, args.port, env)
            if not wait_until_serving(args.port, dagster):
                print(
                    "./dev ui: dagster dev did not come up; see its output above", file=sys.stderr
                )
                return 1
            print(
                f"\nDagster UI: http://127.0.0.1:{args.port}  (Ctrl-C stops everything)\n{CLICKS}",
                flush=True,
            )
            code = dagster.wait()
            print(f"./dev ui: dagster dev exited ({code}); stopping", file=sys.stderr)
            return code or 1
    except UsageError as e:
        print(f"./dev ui: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Stop):
        what = "dagster dev and the embedded servers" if dagster else "the embedded servers"
        print(f"\nstopping {what} ...", flush=True)
        return 0
    finally:
        # Ctrl-C again while stopping must not leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if dagster is not None:
            stop_group(dagster)
        for server in reversed(servers):
            server.stop()
        if witness is not None:
            witness.stop()


# The real clicks of Dagster 1.13 (docs/dagster.md).
CLICKS = (
    "  archive a day: Assets > cold_archive > Materialize, pick the day in the dialog, "
    "Launch 1 run\n"
    "  or: Jobs > audit_archive_job > Launchpad, pick the partition, Launch Run\n"
    "  several days: the same dialog with a range of days launches a backfill\n"
    "  (docs/dagster.md)\n"
)


def _say_what_data(state: dict[str, Any], home: Path, objects: int, env: dict[str, str]) -> None:
    """Seeded afresh, or reused (warning when batch records name objects S3 lacks)."""
    if state.get("seeded"):
        print(
            f"seeded {state['events']:,} demo events from {state['startDate']} "
            f"(empty store); the days up to {RETENTION_DAYS} days ago are due"
        )
        return
    print(
        f"reusing the data in {home}: {plural(objects, 'object')} restored, partitions "
        f"from {state['startDate']}"
    )
    missing = missing_objects(env)
    if missing:
        print(
            f"WARNING: {plural(len(missing), 'archived object')} named by batch records are "
            f"missing from the embedded S3 (e.g. {missing[0]}). Start with --reset for a "
            "consistent demo.",
            file=sys.stderr,
        )


def _print_env(env: dict[str, str], home: Path) -> None:
    """Every variable the audit-archive CLI needs, ready to paste. The HMAC signing key and
    the S3 secret are the demo's published values (audit_archive_dev/demo.py, embedded.py),
    never production secrets, so they are printed as they are; the signed log's key is
    this data folder's own, so it is read from its file (readable by its owner only)."""
    lines = []
    for name, value in env.items():
        if name == "AUDIT_LOG_SIGNING_KEY":
            key_file = shlex.quote(str(home / KEY_FILE))
            lines.append(f'  export {name}="$(cat {key_file})"')
        else:
            lines.append(f"  export {name}={shlex.quote(value)}")
    print(
        "the archive's environment; paste it into a shell for the audit-archive CLI "
        "(check, verify, archives, ...). AUDIT_SIGNING_KEY and AUDIT_COLD_SECRET_KEY are "
        "the demo's public values, not secrets:\n" + "\n".join(lines),
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())

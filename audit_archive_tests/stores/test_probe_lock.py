"""The start-up probe of conditional writes across processes: every run worker of a
backfill is its own process and proves the store when it starts; those that start
together take turns (a file lock in the staging folder), so the store never sees
simultaneous probes of one key, and a process that stalls holding the lock delays the
others only for a while."""

from __future__ import annotations

import fcntl
import threading
import time

import pytest

from audit_archive.format.layout import probe_key
from audit_archive.settings import Settings
from audit_archive.stores import clients
from audit_archive.stores.clients import open_stores, probe_lock_path
from audit_archive_tests.support.harness import Harness


def _open_in_thread(errors: list[BaseException]) -> threading.Thread:
    def opened() -> None:
        try:
            open_stores(Settings.from_env()).close()
        except BaseException as e:  # reported to the test
            errors.append(e)

    thread = threading.Thread(target=opened, daemon=True)
    thread.start()
    return thread


def test_a_run_starting_while_another_process_probes_the_store_waits_its_turn(
    harness: Harness,
) -> None:
    key = probe_key(harness.settings.cold_prefix)
    path = probe_lock_path(harness.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    errors: list[BaseException] = []
    with open(path, "a") as other_process:  # another open file: flock treats it as a process
        fcntl.flock(other_process, fcntl.LOCK_EX)
        thread = _open_in_thread(errors)
        time.sleep(3)
        assert thread.is_alive(), "the run waits while the store is being probed"
        assert key not in harness.object_keys(with_probe=True), "nothing written meanwhile"
        fcntl.flock(other_process, fcntl.LOCK_UN)
        thread.join(60)
    assert not thread.is_alive() and errors == []
    assert key in harness.object_keys(with_probe=True), "then it probed the store itself"


def test_a_process_stalled_holding_the_probe_lock_delays_the_others_only_a_while(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "PROBE_LOCK_WAIT_SECONDS", 1.0)
    path = probe_lock_path(harness.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    errors: list[BaseException] = []
    with open(path, "a") as stalled:
        fcntl.flock(stalled, fcntl.LOCK_EX)  # never released while the run starts
        thread = _open_in_thread(errors)
        thread.join(60)
        assert not thread.is_alive() and errors == []
    assert probe_key(harness.settings.cold_prefix) in harness.object_keys(with_probe=True)

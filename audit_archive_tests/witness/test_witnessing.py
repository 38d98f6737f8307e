"""The log as a witness client (SPEC section 8), end to end on the real servers and real
witnesses on loopback ports: nothing leaves hot until a quorum cosigned the head; the
cosigned head is checked offline by an auditor holding only public keys; a witness that
refuses, is down or stalls keeps the events in hot and fails the run naming it."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from audit_archive.archive import witnessing
from audit_archive.cli import main
from audit_archive.errors import ConfigError
from audit_archive.format import layout
from audit_archive.format.logentry import latest_checkpoint_key, witnessed_key
from audit_archive.format.note import generate_key
from audit_archive.format.witness import cosignatures
from audit_archive.settings import Settings
from audit_archive_tests.support.harness import LOG_KEY, LOG_VERIFIER, Harness, after_due, due_day
from audit_archive_tests.support.reliability import failure_messages
from audit_archive_tests.support.witnesses import (
    free_port,
    new_witness,
    running_witness,
    start_witness_process,
    witness_entry,
)

W1, W2 = new_witness(1), new_witness(2)
LOG = Settings.from_env({"AUDIT_LOG_SIGNING_KEY": LOG_KEY}, require_signing_key=False).log_signer


def configure(harness: Harness, monkeypatch: pytest.MonkeyPatch, entries: list[str], quorum=None):
    values = {"AUDIT_LOG_SIGNING_KEY": LOG_KEY, "AUDIT_LOG_WITNESSES": ",".join(entries)}
    if quorum is not None:
        values["AUDIT_LOG_WITNESS_QUORUM"] = str(quorum)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
        harness.env[name] = value


def materialization(result) -> dict:
    event = next(e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def hot_count(harness: Harness, day) -> int:
    return sum(1 for e in harness.events.find({}) if e["at"].date() == day)


def test_with_two_witnesses_and_quorum_2_the_head_is_cosigned_and_checked_offline(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    days = [due_day(3), due_day(2)]
    harness.seed({d: 25 for d in days})
    with (
        running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1,
        running_witness(W2, [LOG.verifier], tmp_path / "w2.json") as s2,
    ):
        configure(harness, monkeypatch, [witness_entry(W1, s1.url), witness_entry(W2, s2.url)])
        for d in days:
            result = harness.run(d)
            assert result.success, failure_messages(result)
            meta = materialization(result)
            assert meta["log_cosignatures"] == 2
            assert meta["log_witnesses"] == "witness.example/w1, witness.example/w2"
            assert hot_count(harness, d) == 0
    head = harness.get(latest_checkpoint_key("audit"))
    assert head == harness.get(witnessed_key("audit", 2))
    assert harness.get(witnessed_key("audit", 1)) != head
    assert len(cosignatures(head, [W1.verifier, W2.verifier])) == 2
    # Each witness remembers what it cosigned.
    assert json.loads((tmp_path / "w2.json").read_text())["logs"][LOG.name]["size"] == 2
    harness.assert_invariant(now=after_due(days[-1]))

    # The auditor: only the log's verifier key and the two witness keys, offline.
    for name in ("AUDIT_SIGNING_KEY", "AUDIT_LOG_SIGNING_KEY", "AUDIT_LOG_WITNESSES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUDIT_LOG_VERIFIER_KEY", LOG_VERIFIER)
    keys = ["--witness", W1.verifier.key_string, "--witness", W2.verifier.key_string]
    day = layout.format_day(days[1])
    assert main(["verify", "--from", str(days[0]), "--to", day, *keys, "--quorum", "2"]) == 0
    assert "witnessed: 2 entries cosigned by witness.example/w1, witness.example/w2" in (
        capsys.readouterr().out
    )
    target = min(e["seq"] for e in harness.seeded if e["at"].date() == days[1])
    proof = tmp_path / "proof.json"
    assert main(["prove", "--seq", str(target), "--out", str(proof)]) == 0
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unreachable")
    monkeypatch.setenv("AUDIT_COLD_ENDPOINT", "http://127.0.0.1:1")
    check = ["check-proof", str(proof), "--verifier-key", LOG_VERIFIER]
    assert main([*check, *keys]) == 0
    assert main([*check, *keys, "--quorum", "1"]) == 0
    other = new_witness(1).verifier.key_string  # same name, a key that did not cosign
    assert main([*check, "--witness", other]) == 1
    assert main([*check, "--witness", other, "--witness", W2.verifier.key_string]) == 1
    assert "1 of the given witnesses" in capsys.readouterr().err


def test_the_witnesses_are_asked_at_once_so_a_stalled_one_costs_its_timeout_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each witness's request waits until every witness has been asked: asked one after
    another, the first would wait for a second request that never comes and time out."""
    day = due_day(2)
    harness.seed({day: 6})
    monkeypatch.setattr(witnessing, "TIMEOUT_SECONDS", 5.0)
    post = witnessing.witnessclient.post_add_checkpoint
    everyone_asked = threading.Barrier(2, timeout=3)

    def together(prefix: str, body: bytes, timeout: float):
        everyone_asked.wait()  # BrokenBarrierError fails this witness's submission
        return post(prefix, body, timeout)

    monkeypatch.setattr(witnessing.witnessclient, "post_add_checkpoint", together)
    with (
        running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1,
        running_witness(W2, [LOG.verifier], tmp_path / "w2.json") as s2,
    ):
        configure(harness, monkeypatch, [witness_entry(W1, s1.url), witness_entry(W2, s2.url)])
        result = harness.run(day)
    assert result.success, failure_messages(result)
    assert materialization(result)["log_cosignatures"] == 2
    assert hot_count(harness, day) == 0


def test_a_refusing_witness_keeps_the_events_in_hot_and_the_next_run_catches_up(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    day, later = due_day(3), due_day(2)
    harness.seed({day: 20, later: 10})
    other_log = generate_key("elsewhere.example/log").verifier
    with (
        running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1,
        running_witness(W2, [other_log], tmp_path / "w2.json") as s2,  # answers 404
    ):
        configure(harness, monkeypatch, [witness_entry(W1, s1.url), witness_entry(W2, s2.url)])
        result = harness.run(day)
        assert not result.success
        message = str(failure_messages(result))
        assert "witness.example/w2" in message and "404" in message
        assert "unknown log origin" in message  # the witness's own words
        assert hot_count(harness, day) == 20, "an event left hot without a quorum"
        assert not harness.object_keys("audit/log/witnessed/")
        port = s2.server_address[1]
    # W2 is reconfigured to witness this log (same key, same URL): any day's run catches up.
    with (
        running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1,
        running_witness(W2, [LOG.verifier], tmp_path / "w2.json", port) as s2,
    ):
        configure(harness, monkeypatch, [witness_entry(W1, s1.url), witness_entry(W2, s2.url)])
        assert harness.run(later).success
        assert hot_count(harness, later) == 0
        assert hot_count(harness, day) == 20  # its own re-run finishes its purge
        assert harness.run(day).success
        assert hot_count(harness, day) == 0
    harness.assert_invariant(now=after_due(later))


def test_a_paused_witness_is_bounded_by_its_timeout_and_named_and_the_next_run_catches_up(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The second witness is a real ``audit-archive witness`` process, SIGSTOPped: the run
    waits no longer than its timeout, fails naming it, and deletes nothing; once the
    witness resumes, the next run gets both cosignatures and purges."""
    day = due_day(2)
    harness.seed({day: 12})
    monkeypatch.setattr(witnessing, "TIMEOUT_SECONDS", 1.0)
    port = free_port()
    with running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1:
        proc = start_witness_process(W2, [LOG.verifier], tmp_path / "w2.json", port, tmp_path)
        try:
            entries = [witness_entry(W1, s1.url), witness_entry(W2, f"http://127.0.0.1:{port}")]
            configure(harness, monkeypatch, entries)
            proc.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            result = harness.run(day)
            assert not result.success
            assert "witness.example/w2" in str(failure_messages(result))
            assert "did not answer" in str(failure_messages(result))
            assert hot_count(harness, day) == 12
            assert time.monotonic() - started < 60
            proc.send_signal(signal.SIGCONT)
            result = harness.run(day)
            assert result.success, failure_messages(result)
            assert hot_count(harness, day) == 0
            head = harness.get(latest_checkpoint_key("audit"))
            assert len(cosignatures(head, [W1.verifier, W2.verifier])) == 2
        finally:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            proc.communicate(timeout=10)


def test_a_witness_that_lost_its_state_is_resynchronised_by_its_409(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    days = [due_day(3), due_day(2)]
    harness.seed({d: 8 for d in days})
    with running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1:
        configure(harness, monkeypatch, [witness_entry(W1, s1.url)])
        assert harness.run(days[0]).success
    # The witness comes back with an empty state: the log's hint (size 1) gets 409 "0".
    with running_witness(W1, [LOG.verifier], tmp_path / "fresh.json") as s1:
        configure(harness, monkeypatch, [witness_entry(W1, s1.url)])
        result = harness.run(days[1])
        assert result.success, failure_messages(result)
    assert json.loads((tmp_path / "fresh.json").read_text())["logs"][LOG.name]["size"] == 2


def test_witness_settings_are_checked_at_start_up_naming_the_variable() -> None:
    entry = f"{W1.verifier.key_string} http://127.0.0.1:9"
    with pytest.raises(ConfigError, match=r"AUDIT_LOG_WITNESSES.*AUDIT_LOG_SIGNING_KEY"):
        Settings.from_env({"AUDIT_LOG_WITNESSES": entry}, require_signing_key=False)
    base = {"AUDIT_LOG_SIGNING_KEY": LOG_KEY, "AUDIT_LOG_WITNESSES": entry}
    for quorum in ("0", "2", "x"):
        with pytest.raises(ConfigError, match="AUDIT_LOG_WITNESS_QUORUM"):
            Settings.from_env(
                {**base, "AUDIT_LOG_WITNESS_QUORUM": quorum}, require_signing_key=False
            )
    settings = Settings.from_env(base, require_signing_key=False)
    assert settings.log_witness_quorum == 1 and settings.log_witnesses[0].name == W1.name
    with pytest.raises(ConfigError, match="AUDIT_LOG_WITNESSES"):
        Settings.from_env({**base, "AUDIT_LOG_WITNESSES": "junk"}, require_signing_key=False)


def test_a_proof_carries_the_latest_cosigned_checkpoint_while_the_head_awaits_its_witnesses(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    day, later = due_day(3), due_day(2)
    harness.seed({day: 6, later: 6})
    with running_witness(W1, [LOG.verifier], tmp_path / "w1.json") as s1:
        configure(harness, monkeypatch, [witness_entry(W1, s1.url)])
        assert harness.run(day).success
    other_log = generate_key("elsewhere.example/log").verifier
    with running_witness(W1, [other_log], tmp_path / "w1b.json") as s1:  # now refuses
        configure(harness, monkeypatch, [witness_entry(W1, s1.url)])
        assert not harness.run(later).success  # head of size 2 published, not cosigned
    target = min(e["seq"] for e in harness.seeded if e["at"].date() == day)
    proof = tmp_path / "proof.json"
    monkeypatch.setenv("AUDIT_LOG_VERIFIER_KEY", LOG_VERIFIER)
    assert main(["prove", "--seq", str(target), "--out", str(proof)]) == 0
    log = json.loads(proof.read_text())["log"]
    assert log["treeSize"] == 1 and log["checkpoint"].encode() == harness.get(
        witnessed_key("audit", 1)
    )
    check = ["check-proof", str(proof), "--verifier-key", LOG_VERIFIER]
    assert main([*check, "--witness", W1.verifier.key_string]) == 0

"""Readers of the signed log (SPEC section 7): an auditor with only the public verifier
key verifies, proves and searches; every kind of tampering is a finding (exit 1)."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from audit_archive.archive import signed_log
from audit_archive.audit import signed_log_view
from audit_archive.audit.verify import verify
from audit_archive.cli import main
from audit_archive.errors import ConfigError
from audit_archive.format.checkpoint import Checkpoint, sign_checkpoint
from audit_archive.format.logentry import entry_key, latest_checkpoint_key, log_prefix
from audit_archive.format.note import generate_key
from audit_archive.settings import Settings
from audit_archive.stores.clients import open_stores
from audit_archive.stores.cold import ColdStore
from audit_archive_tests.support.harness import LOG_KEY, LOG_VERIFIER, Harness, after_due, due_day

OTHER_KEY = generate_key("test.example/audit-archive")  # same origin, another key


@pytest.fixture
def logged(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """Three days archived with the log on."""
    monkeypatch.setenv("AUDIT_LOG_SIGNING_KEY", LOG_KEY)
    harness.env["AUDIT_LOG_SIGNING_KEY"] = LOG_KEY
    harness.seed({due_day(4): 12, due_day(3): 9, due_day(2): 30, due_day(1): 3})
    for n in (4, 3, 2):
        assert harness.run(due_day(n)).success
    harness.assert_invariant(now=after_due(due_day(2)))
    return harness


def as_auditor(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret at all: no HMAC key, no log signing key; only the verifier key."""
    for name in ("AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEYS_PREVIOUS", "AUDIT_LOG_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUDIT_LOG_VERIFIER_KEY", LOG_VERIFIER)


def run_verify(harness: Harness, **kwargs):
    stores = open_stores(Settings.from_env(require_signing_key=False))  # as the auditor
    try:
        return verify(stores, due_day(4), due_day(2), now=after_due(due_day(2)), **kwargs)
    finally:
        stores.close()


def put(harness: Harness, key: str, data: bytes) -> None:
    harness.s3.put_object(Bucket=harness.bucket, Key=key, Body=data)


def test_an_auditor_with_only_the_verifier_key_gets_valid(
    logged: Harness, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert [str(d.status) for d in report.days] == ["valid", "valid", "valid"]
    assert report.summary["log"]["checkpointSize"] == 3 and report.summary["log"]["covered"] == 3
    assert report.exit_code == 0
    assert main(["verify", "--from", str(due_day(4)), "--to", str(due_day(2))]) == 0
    assert "signed log test.example/audit-archive: checkpoint size 3" in capsys.readouterr().out


def test_without_the_verifier_key_the_same_auditor_cannot_authenticate(
    logged: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_auditor(logged, monkeypatch)
    monkeypatch.delenv("AUDIT_LOG_VERIFIER_KEY")
    report = run_verify(logged)
    assert {str(d.status) for d in report.days} == {"unverifiable"}


def test_an_auditor_proves_an_event_and_checks_it_offline_with_only_the_verifier_key(
    logged: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    as_auditor(logged, monkeypatch)
    day = due_day(2)
    target = sorted(e["seq"] for e in logged.seeded if e["at"].date() == day)[11]
    path = tmp_path / "proof.json"
    assert main(["prove", "--seq", str(target), "--out", str(path)]) == 0
    document = json.loads(path.read_text())
    log = document["log"]
    assert log["treeSize"] == 3 and log["index"] == 2
    assert base64.b64decode(log["manifestBytes"]) == logged.get(document["manifestKey"])
    assert log["checkpoint"].encode() == logged.get(latest_checkpoint_key("audit"))

    # Offline: MongoDB and S3 unreachable, no HMAC key, only the public verifier key.
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unreachable")
    monkeypatch.setenv("AUDIT_COLD_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.delenv("AUDIT_LOG_VERIFIER_KEY")
    assert main(["check-proof", str(path), "--verifier-key", LOG_VERIFIER]) == 0
    assert "(in the signed log)" in capsys.readouterr().out
    assert main(["check-proof", str(path), "--verifier-key", OTHER_KEY.verifier.key_string]) == 1

    def flip_hex(h: str) -> str:
        return ("0" if h[0] != "0" else "1") + h[1:]

    def tampered(change) -> int:
        forged = copy.deepcopy(document)
        change(forged)
        path.write_text(json.dumps(forged))
        return main(["check-proof", str(path), "--verifier-key", LOG_VERIFIER])

    note = log["checkpoint"]
    sig_line = note.rstrip("\n").rsplit("\n", 1)[1]
    forged_sig = sig_line[:-8] + ("AAAAAAA=" if not sig_line.endswith("AAAAAAA=") else "BBBBBBA=")
    other_note = sign_checkpoint(Checkpoint("test.example/audit-archive", 3, b"\0" * 32), OTHER_KEY)
    changes = {
        "event": lambda d: d.update(eventLine=d["eventLine"].replace('"seq":', '"seq": ', 1)[:-1]),
        "event field": lambda d: d.update(
            eventLine=d["eventLine"].replace('"action":"', '"action":"x')
        ),
        "audit path": lambda d: d["auditPath"].__setitem__(0, flip_hex(d["auditPath"][0])),
        "log path": lambda d: d["log"]["inclusionPath"].__setitem__(
            0, flip_hex(d["log"]["inclusionPath"][0])
        ),
        "log index": lambda d: d["log"].update(index=1),
        "manifest bytes": lambda d: d["log"].update(
            manifestBytes=base64.b64encode(
                base64.b64decode(d["log"]["manifestBytes"]) + b" "
            ).decode()
        ),
        "manifest": lambda d: d["manifest"].update(eventCount=d["manifest"]["eventCount"] + 1),
        "checkpoint text": lambda d: d["log"].update(checkpoint=note.replace("\n3\n", "\n4\n", 1)),
        "checkpoint signature": lambda d: d["log"].update(
            checkpoint=note.replace(sig_line, forged_sig)
        ),
        "checkpoint by another key": lambda d: d["log"].update(checkpoint=other_note),
        "no log": lambda d: d.pop("log"),
    }
    for what, change in changes.items():
        assert tampered(change) == 1, what


def test_a_proof_opens_the_signed_log_once_and_reads_its_manifest_once(
    logged: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Without the HMAC key the signed log vouches for the part and gives the proof's
    ``log`` object: one view of the log (its checkpoint and leaves) does both, over the
    manifest bytes the reader checked."""
    as_auditor(logged, monkeypatch)
    views: list[object] = []
    open_view = signed_log_view.SignedLogView.__init__

    def counted_view(self, *args, **kwargs) -> None:
        views.append(self)
        open_view(self, *args, **kwargs)

    reads: list[str] = []
    get_bytes = ColdStore.get_bytes

    def counted_get(self, key: str) -> bytes:
        reads.append(key)
        return get_bytes(self, key)

    monkeypatch.setattr(signed_log_view.SignedLogView, "__init__", counted_view)
    monkeypatch.setattr(ColdStore, "get_bytes", counted_get)
    target = sorted(e["seq"] for e in logged.seeded if e["at"].date() == due_day(3))[4]
    path = tmp_path / "proof.json"
    assert main(["prove", "--seq", str(target), "--out", str(path)]) == 0
    document = json.loads(path.read_text())
    assert document["log"]["index"] == 1, "vouched for and proven by the log"
    assert len(views) == 1
    assert reads.count(document["manifestKey"]) == 1
    assert reads.count(latest_checkpoint_key("audit")) == 1


def test_search_and_archives_work_with_only_the_verifier_key(
    logged: Harness, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    as_auditor(logged, monkeypatch)
    day = str(due_day(2))
    assert main(["search", "--from", day, "--to", day]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 30
    assert main(["archives"]) == 0


def test_a_rewritten_history_is_exposed_by_a_checkpoint_kept_earlier(
    logged: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    """Someone holding every key rewrites a manifest and rebuilds the whole log: the log
    is consistent with itself again, but not with a checkpoint a witness kept."""
    kept = tmp_path / "witness-checkpoint"
    kept.write_bytes(logged.get(latest_checkpoint_key("audit")))

    rec = logged.records(due_day(3))[0]
    original = logged.get(rec["manifestKey"])
    rewritten = json.dumps(json.loads(original), separators=(",", ":")).encode()  # same HMAC
    assert rewritten != original
    put(logged, rec["manifestKey"], rewritten)
    import hashlib

    logged.batches.update_one(
        {"day": rec["day"], "part": rec["part"]},
        {"$set": {"manifestSha256": hashlib.sha256(rewritten).hexdigest()}},
    )
    for key in logged.object_keys(log_prefix("audit")):
        logged.s3.delete_object(Bucket=logged.bucket, Key=key)
    logged.db[f"{logged.settings.batches_collection}_log"].drop()
    logged.batches.update_many({}, {"$unset": {"logIndex": ""}})
    stores = open_stores(logged.settings)
    signed_log.append(stores, "forger")
    stores.close()
    logged.assert_invariant(now=after_due(due_day(2)))  # a perfect forgery, on its own

    as_auditor(logged, monkeypatch)
    assert run_verify(logged).exit_code == 0, "without a kept checkpoint it cannot show"
    report = run_verify(logged, trusted_checkpoints=[(str(kept), kept.read_bytes())])
    assert report.exit_code == 1
    assert any("rewritten" in f for f in report.summary["log"]["findings"])
    args = ["verify", "--from", str(due_day(4)), "--to", str(due_day(2))]
    assert main([*args, "--trusted-checkpoint", str(kept)]) == 1
    assert "history was rewritten after it was kept" in capsys.readouterr().out


def log_findings(report) -> str:
    return "\n".join(report.summary["log"]["findings"])


def day_findings(report) -> str:
    return "\n".join(str(f) for d in report.days for f in d.findings)


def test_a_gap_in_the_entries_is_a_finding(logged: Harness, monkeypatch) -> None:
    logged.s3.delete_object(Bucket=logged.bucket, Key=entry_key("audit", 1))
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    assert "entry 1 is missing" in log_findings(report)


def test_an_entry_naming_a_missing_manifest_is_a_finding(logged: Harness, monkeypatch) -> None:
    entry = json.loads(logged.get(entry_key("audit", 0)))
    entry["manifestKey"] = entry["manifestKey"].replace("part-0001", "part-0009")
    put(logged, entry_key("audit", 0), json.dumps(entry).encode())
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    assert "which is missing" in log_findings(report)
    assert "no valid checkpoint of the signed log covers it" in day_findings(report)


def test_a_manifest_that_differs_from_its_leaf_is_modified(logged: Harness, monkeypatch) -> None:
    rec = logged.records(due_day(3))[0]
    put(logged, rec["manifestKey"], logged.get(rec["manifestKey"]) + b"\n")
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    by_day = {d.day: str(d.status) for d in report.days}
    assert by_day[due_day(3)] == "modified"
    assert "differ from log entry 1" in log_findings(report)
    assert "not a prefix of the log as stored now" in log_findings(report)


@pytest.mark.parametrize("damage", ["signature", "another key", "garbage", "missing"])
def test_a_bad_latest_checkpoint_is_a_finding_of_the_whole_log(
    logged: Harness, monkeypatch, damage: str
) -> None:
    key = latest_checkpoint_key("audit")
    note = logged.get(key).decode()
    if damage == "signature":
        line = note.rstrip("\n").rsplit("\n", 1)[1]
        put(logged, key, note.replace(line, line[:-8] + "AAAAAAA=").encode())
    elif damage == "another key":
        put(
            logged,
            key,
            sign_checkpoint(Checkpoint(OTHER_KEY.name, 3, b"\1" * 32), OTHER_KEY).encode(),
        )
    elif damage == "garbage":
        put(logged, key, b"\xff\x00 not a note")
    else:
        logged.s3.delete_object(Bucket=logged.bucket, Key=key)
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    assert "checkpoint" in log_findings(report)
    args = ["verify", "--from", str(due_day(4)), "--to", str(due_day(2))]
    assert main(args) == 1


def test_a_stored_checkpoint_inconsistent_with_the_log_is_a_finding(
    logged: Harness, monkeypatch
) -> None:
    from audit_archive.format.logentry import checkpoint_key
    from audit_archive.format.note import parse_signer

    forged = sign_checkpoint(
        Checkpoint("test.example/audit-archive", 2, b"\2" * 32), parse_signer(LOG_KEY)
    )
    put(logged, checkpoint_key("audit", 2), forged.encode())
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    assert "checkpoints/000000000002 (size 2) is not a prefix" in log_findings(report)


def test_malformed_log_keys_are_configuration_errors_that_never_echo_the_key(
    harness: Harness, monkeypatch, capsys
) -> None:
    bad = LOG_KEY[:-4] + "AAAA"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**harness.env, "AUDIT_LOG_SIGNING_KEY": bad})
    assert caught.value.variable == "AUDIT_LOG_SIGNING_KEY" and bad[12:] not in str(caught.value)
    with pytest.raises(ConfigError, match="AUDIT_LOG_VERIFIER_KEY"):
        Settings.from_env({**harness.env, "AUDIT_LOG_VERIFIER_KEY": LOG_KEY})
    with pytest.raises(ConfigError, match="is not the verifier key of AUDIT_LOG_SIGNING_KEY"):
        Settings.from_env(
            {
                **harness.env,
                "AUDIT_LOG_SIGNING_KEY": LOG_KEY,
                "AUDIT_LOG_VERIFIER_KEY": OTHER_KEY.verifier.key_string,
            }
        )
    monkeypatch.setenv("AUDIT_LOG_SIGNING_KEY", bad)
    harness.seed({due_day(2): 3})
    result = harness.run(due_day(2))
    assert not result.success
    assert harness.events.count_documents({}) == 3
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert "AUDIT_LOG_SIGNING_KEY" in err and bad.split("+")[-1] not in err


def test_a_rolled_back_head_is_a_finding_of_the_whole_log(logged: Harness, monkeypatch) -> None:
    """The latest checkpoint put back to an older, genuinely signed one: every checkpoint
    still verifies and is a prefix of the tree, yet the head hides the parts after it."""
    from audit_archive.format.logentry import checkpoint_key

    entries = len(logged.object_keys(f"{log_prefix('audit')}entries/"))
    assert entries == 3
    put(logged, latest_checkpoint_key("audit"), logged.get(checkpoint_key("audit", 2)))
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    found = log_findings(report)
    assert "covers 2 of the log's 3 entries" in found
    assert "numbered checkpoint of size 3 is stored: the head was rolled back" in found
    args = ["verify", "--from", str(due_day(4)), "--to", str(due_day(2))]
    assert main(args) == 1


def test_a_head_that_lags_the_entries_is_a_finding_even_without_a_newer_checkpoint(
    logged: Harness, monkeypatch
) -> None:
    """The numbered checkpoint of the newest size removed too: only the entries show
    that the head was rolled back."""
    from audit_archive.format.logentry import checkpoint_key

    put(logged, latest_checkpoint_key("audit"), logged.get(checkpoint_key("audit", 1)))
    for size in (2, 3):
        logged.s3.delete_object(Bucket=logged.bucket, Key=checkpoint_key("audit", size))
    as_auditor(logged, monkeypatch)
    report = run_verify(logged)
    assert report.exit_code == 1
    found = log_findings(report)
    assert "covers 1 of the log's 3 entries" in found
    assert "numbered checkpoint" not in found

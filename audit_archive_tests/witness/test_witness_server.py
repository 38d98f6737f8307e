"""The witness the project ships (SPEC section 8) answers every case of C2SP tlog-witness
``POST /add-checkpoint`` correctly, over real HTTP on a loopback port: 404, 403, 400, 409
with ``text/x.tlog.size``, 422 and 200 with one cosignature line; its state is written
before it answers, survives restarts, and concurrent requests can never roll it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_archive.format.addcheckpoint import encode_request
from audit_archive.format.checkpoint import Checkpoint, sign_checkpoint
from audit_archive.format.note import generate_key, split_note
from audit_archive.format.tlog import consistency_proof, leaf_hash, tree_hash
from audit_archive.format.witness import add_lines, cosignatures, generate_witness_key
from audit_archive.stores.witnessclient import Reply, post_add_checkpoint
from audit_archive.stores.witnessstate import StateFile
from audit_archive.witness.server import WitnessServer
from audit_archive.witness.service import Witness
from audit_archive_tests.support.witnesses import free_port, start_witness_process

LOG = generate_key("test.example/log")
STRANGER = generate_key("test.example/log")  # same origin, a key the witness does not know
OTHER_LOG = generate_key("other.example/log")
WITNESS = generate_witness_key("witness.example/w1")
LEAVES = [leaf_hash(f"manifest {i}".encode()) for i in range(40)]


def note(size: int, signer=LOG, leaves=LEAVES) -> bytes:
    return sign_checkpoint(Checkpoint(signer.name, size, tree_hash(leaves[:size])), signer).encode()


def submit(url: str, old: int, size: int, leaves=LEAVES, signer=LOG, proof=None) -> Reply:
    if proof is None:
        proof = consistency_proof(leaves, old, size) if old else []
    return post_add_checkpoint(url, encode_request(old, proof, note(size, signer, leaves)))


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "witness-state.json"


@pytest.fixture
def url(state_path: Path) -> Iterator[str]:
    server = WitnessServer(
        ("127.0.0.1", 0),
        Witness(WITNESS, [LOG.verifier, OTHER_LOG.verifier], StateFile(str(state_path))),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()


def assert_cosigned(reply: Reply, size: int, leaves=LEAVES) -> None:
    assert reply.status == 200, reply
    lines = reply.body.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("— witness.example/w1 ")
    found = cosignatures(add_lines(note(size, leaves=leaves).decode(), lines), [WITNESS.verifier])
    assert len(found) == 1 and abs(found[0].timestamp - time.time()) < 60


def test_the_first_checkpoint_is_cosigned_from_old_0_and_later_ones_with_a_proof(url: str) -> None:
    assert_cosigned(submit(url, 0, 5), 5)
    assert_cosigned(submit(url, 5, 13), 13)
    assert_cosigned(submit(url, 13, 13), 13)  # the same checkpoint again: cosigned again


def test_an_unknown_origin_is_404(url: str) -> None:
    reply = submit(url, 0, 3, signer=generate_key("nobody.example/log"))
    assert reply.status == 404 and b"unknown log origin" in reply.body


def test_a_checkpoint_no_known_key_signed_is_403(url: str) -> None:
    assert submit(url, 0, 3, signer=STRANGER).status == 403
    # A bad signature by the known key is no better.
    signed = bytearray(note(3))
    signed[-10] = ord("A") if signed[-10] != ord("A") else ord("B")
    reply = post_add_checkpoint(url, encode_request(0, [], bytes(signed)))
    assert reply.status == 403


def test_old_larger_than_the_checkpoint_or_a_malformed_body_is_400(url: str) -> None:
    assert submit(url, 0, 5).status == 200
    assert submit(url, 9, 5, proof=[]).status == 400
    for body in (b"", b"old 5\n", b"hello\n\n" + note(5), b"old 5\n\nnot a note\n"):
        assert post_add_checkpoint(url, body).status == 400, body


def test_old_other_than_the_size_last_cosigned_is_409_with_that_size(url: str) -> None:
    first = submit(url, 3, 5)
    assert first.status == 409 and first.body == b"0\n" and first.content_type == "text/x.tlog.size"
    assert submit(url, 0, 5).status == 200
    for old in (0, 4):
        reply = submit(url, old, 8)
        assert (reply.status, reply.body, reply.content_type) == (409, b"5\n", "text/x.tlog.size")
    assert_cosigned(submit(url, 5, 8), 8)


def test_a_second_root_for_the_size_last_cosigned_is_409(url: str) -> None:
    assert submit(url, 0, 6).status == 200
    forked = [leaf_hash(b"rewritten"), *LEAVES[1:]]
    reply = submit(url, 6, 6, leaves=forked)
    assert (reply.status, reply.body, reply.content_type) == (409, b"6\n", "text/x.tlog.size")


def test_a_consistency_proof_that_does_not_verify_is_422_and_changes_nothing(url: str) -> None:
    assert submit(url, 0, 6).status == 200
    forked = [leaf_hash(b"rewritten"), *LEAVES[1:]]  # size 9 not extending the cosigned 6
    assert submit(url, 6, 9, leaves=forked).status == 422
    assert submit(url, 6, 9, proof=[bytes(32)]).status == 422
    assert_cosigned(submit(url, 6, 9), 9)  # the honest log still goes on


def test_logs_are_kept_apart_by_origin(url: str) -> None:
    assert submit(url, 0, 7).status == 200
    assert submit(url, 0, 2, signer=OTHER_LOG).status == 200
    assert submit(url, 2, 3, signer=OTHER_LOG).status == 200
    assert submit(url, 7, 9).status == 200


def test_concurrent_requests_never_roll_the_state_back(url: str, state_path: Path) -> None:
    """Many clients race from the same old size to different new sizes: exactly one wins
    each round, the others get 409, and the stored size never goes down."""
    assert submit(url, 0, 1).status == 200
    stored = 1
    for _ in range(4):
        results: dict[int, int] = {}

        def go(size: int, old: int = stored, results: dict[int, int] = results) -> None:
            results[size] = submit(url, old, size).status

        threads = [threading.Thread(target=go, args=(s,)) for s in range(stored + 1, stored + 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [s for s, status in results.items() if status == 200]
        assert len(winners) == 1 and set(results.values()) == {200, 409}
        saved = json.loads(state_path.read_text())["logs"][LOG.name]["size"]
        assert saved == winners[0] > stored
        stored = saved


def run_cli(tmp_path: Path, state: Path, port: int) -> subprocess.Popen:
    return start_witness_process(WITNESS, [LOG.verifier], state, port, tmp_path)


def test_the_witness_command_keeps_its_state_across_a_kill_and_logs_refusals(
    tmp_path: Path, state_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = run_cli(tmp_path, state_path, port)
    try:
        assert submit(url, 0, 10).status == 200
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: the state was on disk already
        proc.wait()
    proc = run_cli(tmp_path, state_path, port)
    try:
        again = submit(url, 0, 12)
        assert (again.status, again.body) == (409, b"10\n")
        forked = [leaf_hash(b"rewritten"), *LEAVES[1:]]
        assert submit(url, 10, 10, leaves=forked).status == 409
        assert_cosigned(submit(url, 10, 12), 12)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "refused POST /add-checkpoint" in err and "409" in err and "a fork" in err
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_the_state_is_written_before_the_answer(url: str, state_path: Path) -> None:
    reply = submit(url, 0, 4)
    assert reply.status == 200
    saved = json.loads(state_path.read_text())["logs"][LOG.name]
    assert saved["size"] == 4 and saved["note"] == split_note(note(4))[0]

"""Claims on calculations: one holder, takeover of dead or expired ones, the failure ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from stores.claims import ClaimBoard


def test_one_holder_at_a_time(tmp_path):
    a, b = ClaimBoard(tmp_path), ClaimBoard(tmp_path)
    ok, _ = a.try_claim("k1", "first")
    assert ok
    ok, holder = b.try_claim("k1")
    assert not ok and holder.owner == a.owner
    b.release("k1")  # not b's claim: stays
    assert a.read_claim("k1").owner == a.owner
    a.release("k1")
    assert a.read_claim("k1") is None
    assert b.try_claim("k1")[0]
    b.release_all()


def test_a_dead_owners_claim_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    board = ClaimBoard(tmp_path)
    (tmp_path / "k.claim").write_text(json.dumps(
        {"key": "k", "owner": "ghost", "host": board.host, "pid": int(dead.stdout),
         "label": "", "claimed_at": time.time()}))
    ok, _ = board.try_claim("k")
    assert ok and board.read_claim("k").owner == board.owner
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.claim"]  # no tombstone left
    board.release("k")


def test_an_expired_lease_is_taken_over_a_live_one_is_not(tmp_path):
    board = ClaimBoard(tmp_path, lease_s=60)
    claim = {"key": "k", "owner": "remote", "host": "another-host", "pid": 1,
             "label": "", "claimed_at": time.time()}
    (tmp_path / "k.claim").write_text(json.dumps(claim))
    assert not board.try_claim("k")[0]              # refreshed now: live
    old = time.time() - 120
    os.utime(tmp_path / "k.claim", (old, old))      # no heartbeat for 2 min
    assert board.try_claim("k")[0]
    board.release("k")


def test_heartbeat_keeps_a_long_claim_alive(tmp_path):
    board = ClaimBoard(tmp_path, lease_s=5)         # heartbeat every second
    assert board.try_claim("k")[0]
    old = time.time() - 100
    os.utime(board.claim_path("k"), (old, old))
    time.sleep(2.5)
    assert time.time() - board.claim_path("k").stat().st_mtime < 5
    assert not ClaimBoard(tmp_path, lease_s=5).try_claim("k")[0]
    board.release("k")


def test_failure_ledger(tmp_path):
    board = ClaimBoard(tmp_path)
    board.record_failure("k", "cannot_bracket_ef", "pw.x failed: cannot bracket Ef")
    board.record_failure("k", "cannot_bracket_ef", "again")
    record = board.read_failure("k")
    assert record["kind"] == "cannot_bracket_ef" and record["attempts"] == 2
    board.clear_failure("k")
    assert board.read_failure("k") is None

"""Claims (leases) on calculations and the ledger of known failures, as files in a folder.

Several campaign processes (on one machine or several sharing a file system) work
through the same structure list: each takes a *claim* on a calculation key (the
input hash) before running it, so no structure is computed twice.  A claim is a
file created with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ file systems)
holding its owner; the owner refreshes its modification time while it works
(heartbeat).  A claim is *stale*, and may be taken over, when its owner is a dead
process on this host, or when it has not been refreshed for ``lease_s`` seconds
(an owner on another host that died).  The takeover renames the stale file away
(atomic: one process wins) and checks it renamed the claim it judged stale.

Known failures are JSON files next to the claims (``<key>.failed.json``), so a
campaign can skip what failed before.  Nothing here knows about QE.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_LEASE_S = 900.0
"""A claim not refreshed for this long (15 min) is stale, whoever holds it."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class Claim:
    """A claim file's content."""

    key: str
    owner: str
    host: str
    pid: int
    label: str = ""
    claimed_at: float = 0.0


class ClaimBoard:
    """Claims and failure records of calculation keys in ``directory``.

    Parameters
    ----------
    directory
        Shared folder (created); for an embedded store, ``<store>/claims``.
    lease_s
        Seconds after the last heartbeat when a claim counts as abandoned.
    """

    def __init__(self, directory: str | os.PathLike[str], lease_s: float = DEFAULT_LEASE_S):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lease_s = float(lease_s)
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[str, threading.Event] = {}

    # ------------------------------------------------------------------ claims
    def claim_path(self, key: str) -> Path:
        """File of ``key``'s claim."""
        return self.directory / f"{key}.claim"

    def read_claim(self, key: str) -> Claim | None:
        """The current claim on ``key`` (None: free)."""
        try:
            data = json.loads(self.claim_path(key).read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # being written this instant: judge it by its age only
            return Claim(key=key, owner="?", host="?", pid=-1)
        return Claim(**data)

    def is_stale(self, key: str, claim: Claim) -> bool:
        """Whether ``claim`` may be taken over (dead local owner or lease expired)."""
        if claim.host == self.host and claim.pid > 0 and not _pid_alive(claim.pid):
            return True
        try:
            age = time.time() - self.claim_path(key).stat().st_mtime
        except FileNotFoundError:
            return True
        return age > self.lease_s

    def try_claim(self, key: str, label: str = "") -> tuple[bool, Claim | None]:
        """Claim ``key`` now.

        Returns
        -------
        ok, holder
            ``(True, None)`` when this board holds the claim (heartbeat running),
            else ``(False, claim)`` naming the live holder.
        """
        for _ in range(3):
            mine = Claim(key=key, owner=self.owner, host=self.host, pid=os.getpid(),
                         label=label, claimed_at=time.time())
            try:
                fd = os.open(self.claim_path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = self.read_claim(key)
                if held is None:
                    continue  # released meanwhile: try again
                if not self.is_stale(key, held) or not self._take_over(key, held):
                    return False, self.read_claim(key) or held
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(mine.__dict__, handle)
            self._start_heartbeat(key)
            return True, None
        return False, self.read_claim(key)

    def _take_over(self, key: str, stale: Claim) -> bool:
        """Move a stale claim away; False when someone else got there first."""
        grave = self.directory / f"{key}.stale-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.claim_path(key), grave)
        except FileNotFoundError:
            return True  # gone already: the caller retries the O_EXCL create
        try:
            moved = Claim(**json.loads(grave.read_text()))
        except (ValueError, TypeError):
            moved = None
        if moved is not None and stale.owner != "?" and moved.owner != stale.owner:
            try:  # a fresh claim replaced the stale one meanwhile: put it back
                os.link(grave, self.claim_path(key))
            except FileExistsError:
                pass
            grave.unlink(missing_ok=True)
            return False
        grave.unlink(missing_ok=True)
        return True

    def _start_heartbeat(self, key: str) -> None:
        stop = threading.Event()
        self._held[key] = stop
        path = self.claim_path(key)
        interval = max(1.0, self.lease_s / 5)

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    os.utime(path)
                except FileNotFoundError:
                    return

        threading.Thread(target=beat, name=f"claim-{key[:8]}", daemon=True).start()

    def release(self, key: str) -> None:
        """Give ``key`` back (only a claim this board holds is removed)."""
        stop = self._held.pop(key, None)
        if stop is not None:
            stop.set()
        held = self.read_claim(key)
        if held is not None and held.owner == self.owner:
            self.claim_path(key).unlink(missing_ok=True)

    def release_all(self) -> None:
        """Give back every claim this board holds."""
        for key in list(self._held):
            self.release(key)

    # ---------------------------------------------------------------- failures
    def failure_path(self, key: str) -> Path:
        """File of ``key``'s failure record."""
        return self.directory / f"{key}.failed.json"

    def record_failure(self, key: str, kind: str, message: str, **extra: Any) -> None:
        """Remember that ``key`` failed (atomically replaces an older record)."""
        previous = self.read_failure(key) or {}
        data = {"key": key, "kind": kind, "message": message, "time": time.time(),
                "attempts": int(previous.get("attempts", 0)) + 1, "host": self.host, **extra}
        tmp = self.directory / f".{key}.failed.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, default=str))
        tmp.replace(self.failure_path(key))

    def read_failure(self, key: str) -> dict[str, Any] | None:
        """The failure record of ``key``, or None."""
        try:
            return json.loads(self.failure_path(key).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def clear_failure(self, key: str) -> None:
        """Forget ``key``'s failure (it succeeded)."""
        self.failure_path(key).unlink(missing_ok=True)

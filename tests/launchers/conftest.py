"""Fixtures: a FireWorks LaunchPad in mongomock file mode, an embedded JobStore, a tiny model."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A localhost TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mongomock_lp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``my_launchpad.yaml`` for FireWorks' mongomock file mode, in a fresh working dir.

    FireWorks switches to ``mongomock_persistence.MongoClient`` when
    ``MONGOMOCK_SERVERSTORE_FILE`` names an existing JSON file (``{}`` to start);
    the LaunchPad host stays a plain ``localhost`` (``mongomock://`` URIs are
    rejected by mongomock 4.3's URI parser).
    """
    import mongomock.gridfs
    import mongomock_persistence
    from fireworks.core import launchpad as lp_module

    db_file = tmp_path / "launchpad.json"
    db_file.write_text("{}")
    monkeypatch.setenv("MONGOMOCK_SERVERSTORE_FILE", str(db_file))
    monkeypatch.setattr(lp_module, "MongoClient", mongomock_persistence.MongoClient)
    mongomock.gridfs.enable_gridfs_integration()
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text("host: localhost\nport: 27017\nname: bete_test\nstrm_lvl: ERROR\n")
    monkeypatch.chdir(tmp_path)
    return lp_file


@pytest.fixture
def launchpad(mongomock_lp_file: Path):
    """A reset, empty mongomock LaunchPad (flushed to its file afterwards)."""
    from launchers.fireworks import close_launchpad, load_launchpad

    lp = load_launchpad(mongomock_lp_file)
    lp.reset("", require_password=False)
    yield lp
    close_launchpad(lp)


@pytest.fixture
def job_store(tmp_path: Path):
    """An embedded (MontyStore/SQLite) JobStore in the test's directory."""
    from stores.config import embedded_store

    return embedded_store(tmp_path / "store")


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a worker subprocess (imports the test jobs, finds ``bete``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["BETE_STORE"] = str(tmp_path / "store")
    return env


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A two-member CSO ensemble of a tiny network, trained on six packaged fast-v1 records."""
    import torch

    from betenet_model.training import TrainConfig
    from stores.datasets import load_fast_v1
    from tests.workflows.screening.conftest import TINY_NETWORK
    from workflows.ml.train import train_from_records

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli-model") / "ens"
    train_from_records(load_fast_v1(None)[4:10], out, members=2, seed=2,
                       training=TrainConfig(max_epochs=6, schedule="early_stopping",
                                            checkpoint_every=0),
                       network_options=TINY_NETWORK)
    torch.set_num_threads(threads)
    return out

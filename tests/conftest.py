"""Shared fixtures: paths to ../shared, QE availability."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FAST_V1 = SHARED / "datasets" / "fast-v1"
BETE_STRUCTURES = SHARED / "structures" / "bete-net"
PSLIBRARY = SHARED / "pseudo" / "pslibrary-1.0.0-pbe-us"
DATA = Path(__file__).resolve().parent / "data"
# the grids tests/data/qe/pb-standard was computed with (`standard` before its q grid went to 5³)
PB_STANDARD_4Q = {"q_grid": [4, 4, 4], "k_grid": [8, 8, 8], "k_grid_dense": [16, 16, 16]}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared is only beside the repo in dev and CI)")
    return path


@pytest.fixture
def fast_v1_dir() -> Path:
    return _need(FAST_V1)


@pytest.fixture
def bete_structures_dir() -> Path:
    return _need(BETE_STRUCTURES)


@pytest.fixture
def pslibrary_dir() -> Path:
    return _need(PSLIBRARY)


@pytest.fixture
def store(tmp_path):
    """A connected embedded JobStore (MontyStore/SQLite) in ``tmp_path/store``."""
    from stores.config import load_job_store

    s = load_job_store(str(tmp_path / "store"))
    s.connect()
    yield s
    s.close()


@pytest.fixture
def require_qe() -> None:
    """Real-QE tests fail loudly (not skip) when QE is missing: CI installs it."""
    missing = [x for x in ("pw.x", "ph.x", "q2r.x", "matdyn.x") if shutil.which(x) is None]
    if missing:
        pytest.fail(f"QE executables missing: {missing}; run scripts/install.sh")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's ~/.config/bete and ~/.bete."""
    home = tmp_path_factory.mktemp("bete-home")
    monkeypatch.setenv("BETE_CONFIG_FILE", str(home / "settings.yaml"))
    monkeypatch.setenv("BETE_STORE", str(home / "store"))
    monkeypatch.setenv("BETE_SCRATCH_DIR", str(home / "scratch"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

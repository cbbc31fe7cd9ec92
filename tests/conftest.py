"""Shared fixtures: paths to ../shared and to the data shipped in tests/data, QE availability."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FAST_V1 = SHARED / "datasets" / "fast-v1"
BETE_STRUCTURES = SHARED / "structures" / "bete-net"
PSLIBRARY = SHARED / "pseudo" / "pslibrary-1.0.0-pbe-us"
DATA = Path(__file__).resolve().parent / "data"
AL_PSEUDO = DATA / "pseudo" / "pslibrary-1.0.0-pbe-us-Al"
"""pslibrary's Al file alone (shipped): the family of the runs in tests/data/qe/al."""
FCC_SITES = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


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
def al_pseudo_dir() -> Path:
    """A family holding pslibrary 1.0.0's Al file only: the Al runs need nothing of ../shared."""
    return AL_PSEUDO


@pytest.fixture
def al_run_dir(tmp_path) -> Path:
    """A copy of the real coarse Al run in tests/data/qe/al, with the flow's file names."""
    dst = tmp_path / "al"
    shutil.copytree(DATA / "qe" / "al", dst)
    # the harvested run used the prefix "al"; the flow's matdyn input names "bete.phdos"
    shutil.copy(dst / "al.phdos", dst / "bete.phdos")
    shutil.copy(dst / "al.fc", dst / "bete.fc")
    return dst


@pytest.fixture
def al_run_input_set(al_pseudo_dir):
    """The input set the run in tests/data/qe/al was computed with (fcc Al, 4³/8³ k, 2³ q)."""
    from pymatgen.core import Lattice, Structure

    from workflows.qe.sets import ElphInputGenerator

    gen = ElphInputGenerator("fast", {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8],
                                      "q_grid": [2, 2, 2], "ecutwfc": 25, "ecutrho": 200},
                             family=str(al_pseudo_dir))
    return gen.get_input_set(Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES))


@pytest.fixture
def pb_standard_input_set(pslibrary_dir):
    """The input set of tests/data/qe/pb-standard: fcc Pb with `standard` as it was then
    (k 8³, dense 16³, q 4³), pinned so the data keeps matching when the preset moves."""
    from pymatgen.core import Lattice, Structure

    from workflows.qe.sets import ElphInputGenerator

    gen = ElphInputGenerator("standard", {"q_grid": [4, 4, 4], "k_grid": [8, 8, 8],
                                          "k_grid_dense": [16, 16, 16]},
                             family=str(pslibrary_dir))
    return gen.get_input_set(Structure(Lattice.cubic(5.03), ["Pb"] * 4, FCC_SITES))


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



# --- skipped tests: one line at the end of every run; in CI only GPU/MongoDB tests may skip ---
# Markers of the tests whose hardware or service a CI machine cannot have.  Anything else that
# skips (a Debian package or ../shared missing) is a set-up gap: scripts/test.sh installs what
# the tests need, and with CI=true such a skip fails the run.
CI_MAY_SKIP = ("gpu", "mongo")
_skipped: list[tuple[str, str, bool]] = []  # (test id, reason, allowed in CI)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _record_skip(report) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
    allowed = any(marker in getattr(report, "keywords", {}) for marker in CI_MAY_SKIP)
    _skipped.append((report.nodeid, reason.removeprefix("Skipped: "), allowed))


def pytest_runtest_logreport(report):
    _record_skip(report)


def pytest_collectreport(report):
    _record_skip(report)


def pytest_sessionfinish(session, exitstatus):
    if _in_ci() and exitstatus == pytest.ExitCode.OK and not all(a for _, _, a in _skipped):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: our line comes last
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    yield  # after pytest's own summaries (failures, -ra, durations): next to the final counts
    if config.option.collectonly:
        return
    listed = "; ".join(f"{nodeid} ({reason})" for nodeid, reason, _ in _skipped) or "none"
    terminalreporter.write_line(f"skipped ({len(_skipped)}): {listed}")
    bad = [nodeid for nodeid, _, allowed in _skipped if not allowed]
    if _in_ci() and bad:
        terminalreporter.write_line(
            f"CI=true: {len(bad)} skip(s) not for a GPU or MongoDB ({', '.join(bad)}); only "
            f"tests marked {' or '.join(CI_MAY_SKIP)} may skip in CI: install what the reason "
            "names (scripts/install-test-deps.sh)", red=True)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (deterministic, and the other core stays free)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

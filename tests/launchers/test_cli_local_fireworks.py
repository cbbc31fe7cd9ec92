"""`bete config init --local DIR`: FireWorks on this machine with no MongoDB and no exports.

In DIR, `bete dfpt submit X && bete launch rapidfire` work as they are: the LaunchPad file
names its mongomock data file, the settings run QE through mpirun on this machine and write
the results into the embedded store DIR/store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pymatgen.core import Lattice, Structure

from tests.launchers.conftest import REPO

COARSE = json.dumps({"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
                     "ecutwfc": 25, "ecutrho": 200})


def _env(tmp_path) -> dict[str, str]:
    """A user's shell: no BETE_* variables (the folder's bete_settings.yaml decides)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BETE_") and k != "MONGOMOCK_SERVERSTORE_FILE"}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return env


def _bete(args, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    code = "import sys; from launchers.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, (args, run.stderr[-3000:])
    return run


@pytest.fixture
def local_dir(tmp_path):
    env = _env(tmp_path)
    folder = tmp_path / "local"
    run = _bete(["config", "init", "--local", str(folder)], tmp_path, env)
    assert "bete launch rapidfire" in run.stderr
    assert {p.name for p in folder.iterdir()} == {"my_launchpad.yaml", "launchpad.json",
                                                 "my_fworker.yaml", "bete_settings.yaml"}
    Structure(Lattice.cubic(4.04), ["Al"] * 4,
              [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
              ).get_primitive_structure().to(filename=str(folder / "Al.cif"))
    return folder, env


def test_submit_in_a_local_folder_needs_no_server_and_no_exports(local_dir):
    folder, env = local_dir
    _bete(["dfpt", "submit", "Al.cif", "--override", COARSE], folder, env)
    assert json.loads((folder / "launchpad.json").read_text())  # the flow is in the file
    rows = json.loads(_bete(["fw-status", "--format", "json"], folder, env).stdout)
    assert [r["state"] for r in rows] == ["READY"]


@pytest.mark.qe
@pytest.mark.slow
def test_submit_then_rapidfire_computes_al_into_the_local_store(local_dir, require_qe):
    """Real QE (coarse fcc Al, 4 jobs): 4 to 8 minutes on 2 busy cores."""
    folder, env = local_dir
    _bete(["dfpt", "submit", "Al.cif", "--override", COARSE], folder, env)
    _bete(["launch", "rapidfire", "--sleep", "0"], folder, env, timeout=1800)
    rows = json.loads(_bete(["fw-status", "--format", "json"], folder, env).stdout)
    assert [r["state"] for r in rows] == ["COMPLETED"]
    results = json.loads(_bete(["query", "--format", "json"], folder, env).stdout)
    assert [r["formula"] for r in results] == ["Al"] and results[0]["lambda"] > 0
    assert (folder / "store" / ".monty.storage").is_file()

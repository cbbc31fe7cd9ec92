"""How many times one electron-phonon calculation builds its QE input set.

Runs one Al calculation through ``run_elph`` with QE replaced at its one seam
(``tests/workflows/qe/mock_qe.FakeQE``: real QE 6.7 outputs of Al) and counts the calls
of ``ElphInputGenerator.get_input_set`` — in the driver (validation, hashing, the flow)
and in the jobs (each job builds its inputs once from the flow's input-set generator,
which travels with it as JSON, so it can run on another machine).  Prints one table row per place.

Run from the repository root: ``python benchmarks/input_set_builds.py``.
"""

from __future__ import annotations

import collections
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymatgen.core import Lattice, Structure

from stores.config import load_job_store
from tests.conftest import AL_PSEUDO
from tests.workflows.qe.mock_qe import FakeQE
from workflows.qe import run as qe_run
from workflows.qe import sets
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200, "nbnd": 10}


def main() -> None:
    """Count the input-set builds of one mocked calculation and print them by caller."""
    callers: collections.Counter[str] = collections.Counter()
    original = sets.ElphInputGenerator.get_input_set

    def counted(self, structure):
        frames = [f for f in traceback.extract_stack()[:-1] if "/workflows/" in f.filename]
        caller = frames[-1]  # the job, or the maker's input_set in the driver
        callers[f"{Path(caller.filename).name}:{caller.name}"] += 1
        return original(self, structure)

    sets.ElphInputGenerator.get_input_set = counted
    qe_run.run_qe = FakeQE()
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    with tempfile.TemporaryDirectory() as tmp:
        store = load_job_store(Path(tmp) / "store")
        store.connect()
        maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(AL_PSEUDO),
                                          scratch_dir=str(Path(tmp) / "scratch"))
        (outcome,) = run_elph([("al", al)], maker, store)
        assert outcome.document["status"] == "completed", outcome
    print(f"{'built by':40s} {'times':>5s}")
    for where, n in sorted(callers.items()):
        print(f"{where:40s} {n:5d}")
    print(f"{'total for one calculation':40s} {sum(callers.values()):5d}")


if __name__ == "__main__":
    main()

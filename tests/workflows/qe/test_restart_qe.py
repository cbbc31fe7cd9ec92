"""A ph.x stopped mid-run (max_seconds) fails its job; running the job again resumes it."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from workflows.qe.errors import QEError
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.jobs import matdyn_job, ph_job, scf_job
from workflows.qe.steps import marker_path

pytestmark = pytest.mark.qe

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}


def test_ph_stopped_by_max_seconds_resumes_with_recover(tmp_path, pslibrary_dir, monkeypatch,
                                                        require_qe):
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    maker = ElphFlowMaker(overrides=COARSE, pseudo_family=str(pslibrary_dir),
                          scratch_dir=str(tmp_path))
    input_set = maker.input_set(al)
    workdir = str(maker.workdir(input_set, maker.calculation_key(input_set)))
    recipe = maker.recipe()
    scf = scf_job.original(input_set.structure, recipe, workdir)

    monkeypatch.setenv("BETE_QE_MAX_SECONDS", "1")
    with pytest.raises(QEError) as err:
        ph_job.original(scf, input_set.structure, recipe, workdir)
    assert err.value.kind == "time_limit"
    assert not marker_path(workdir, "ph").exists()

    monkeypatch.delenv("BETE_QE_MAX_SECONDS")
    ph = ph_job.original(scf, input_set.structure, recipe, workdir)
    ph_in = (tmp_path / workdir / "ph.in").read_text()
    assert "recover = .true." in ph_in
    assert ph["fixes"] == [] or all("scratch" in f for f in ph["fixes"])
    out = matdyn_job.original(ph, input_set.structure, recipe, workdir)
    assert out["matdyn_asr"] == "crystal"
    lam = [float(line.split()[3]) for line in (tmp_path / workdir / "lambda").read_text()
           .splitlines() if line.strip().startswith("Broadening")]
    assert len(lam) == 10 and 0.3 < lam[3] < 3.0

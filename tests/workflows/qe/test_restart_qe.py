"""A ph.x stopped mid-run (max_seconds) fails its job; running the job again resumes it.

With ``max_seconds=1`` ph.x stops inside the first q point (or a later one on a fast
machine), and the rerun starts at the first unfinished q point without QE's ``recover``;
tests/launchers/test_fireworks_restart_qe.py stops later and checks that finished q points
are kept and λ matches an uninterrupted run.
"""

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


def test_ph_stopped_by_max_seconds_resumes(tmp_path, pslibrary_dir, monkeypatch,
                                                        require_qe):
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(pslibrary_dir),
                                      scratch_dir=str(tmp_path))
    input_set = maker.input_set(al)
    workdir = str(maker.workdir(input_set, maker.calculation_key(input_set)))
    generator = maker.input_set_generator.pinned()
    scf = scf_job.original(input_set.structure, generator, workdir)

    monkeypatch.setenv("BETE_QE_MAX_SECONDS", "1")
    with pytest.raises(QEError) as err:
        ph_job.original(scf, input_set.structure, generator, workdir)
    assert err.value.kind == "time_limit"
    assert not marker_path(workdir, "ph").exists()

    monkeypatch.delenv("BETE_QE_MAX_SECONDS")
    ph = ph_job.original(scf, input_set.structure, generator, workdir)
    ph_in = (tmp_path / workdir / "ph.in").read_text()
    # ph.x stops inside q point 1 on a slow machine, inside a later one on a fast machine: the
    # rerun starts afresh at the first unfinished q point, never with QE's recover
    resumed = ph["resumed_at_q"]
    assert resumed >= 1 and "recover = .true." not in ph_in
    assert ("start_q" not in ph_in) if resumed == 1 else (f"start_q = {resumed}" in ph_in)
    assert ph["fixes"] == []
    out = matdyn_job.original(ph, input_set.structure, generator, workdir)
    assert out["matdyn_asr"] == "crystal"
    lam = [float(line.split()[3]) for line in (tmp_path / workdir / "lambda").read_text()
           .splitlines() if line.strip().startswith("Broadening")]
    assert len(lam) == 10 and 0.3 < lam[3] < 3.0

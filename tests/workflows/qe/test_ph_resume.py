"""Which q point a rerun ph job resumes at (files of an interrupted run, no QE)."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from workflows.qe.flows import ElphFlowMaker
from workflows.qe.jobs import ph_resume_q
from workflows.qe.steps import write_marker

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}
HEADER = "     Calculation of q =    0.0000000   0.0000000   0.0000000\n"


@pytest.fixture
def run(tmp_path, al_pseudo_dir):
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    input_set = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir)
                                          ).input_set(al)
    wd = tmp_path / "calc"
    (wd / "tmp" / "_ph0").mkdir(parents=True)
    (wd / "elph_dir").mkdir()
    (wd / "bete.dyn0").write_text("   2   2   2\n   3\n")
    return wd, input_set


def _finish(wd, iq: int, nsigma: int = 10) -> None:
    (wd / f"bete.dyn{iq}").write_text("dyn")
    (wd / "elph_dir" / f"elph.inp_lambda.{iq}").write_text("lambda")
    for i in range(1, nsigma + 1):
        (wd / "elph_dir" / f"a2Fq2r.{50 + i}.{iq}").write_text("a2f")


def test_first_attempt_and_finished_runs_do_not_resume(run):
    wd, input_set = run
    assert ph_resume_q(wd, "ph", input_set) is None  # no ph.out yet
    (wd / "ph.out").write_text(HEADER)
    write_marker(wd, "ph", {"wall_time_s": 1.0})
    assert ph_resume_q(wd, "ph", input_set) is None  # finished


def test_resume_at_the_q_point_ph_was_in(run):
    wd, input_set = run
    (wd / "ph.in").write_text("&INPUTPH\n  ldisp = .true.\n/\n")
    (wd / "ph.out").write_text("started\n")
    assert ph_resume_q(wd, "ph", input_set) == 1  # stopped before any q point
    (wd / "ph.out").write_text(HEADER)
    assert ph_resume_q(wd, "ph", input_set) == 1
    _finish(wd, 1)
    (wd / "ph.out").write_text(HEADER * 2)
    assert ph_resume_q(wd, "ph", input_set) == 2
    # q 2's files are there, but ph.x had not gone on to q 3: q 2 may be cut, redo it
    _finish(wd, 2)
    assert ph_resume_q(wd, "ph", input_set) == 2
    # a second interruption of a run that had started at q 2
    (wd / "ph.in").write_text("&INPUTPH\n  start_q = 2\n/\n")
    (wd / "ph.out").write_text(HEADER * 2)
    assert ph_resume_q(wd, "ph", input_set) == 3


def test_a_resumed_run_stopped_before_its_first_q_point_keeps_the_finished_ones(run):
    """Killed again while ph.x (started at q 3) was still reading the scf: q 1 and 2 stay."""
    wd, input_set = run
    _finish(wd, 1)
    _finish(wd, 2)
    (wd / "ph.in").write_text("&INPUTPH\n  start_q = 3\n/\n")
    (wd / "ph.out").write_text("     Program PHONON v.6.7MaX starts on ...\n")
    assert ph_resume_q(wd, "ph", input_set) == 3
    (wd / "bete.dyn0").unlink()           # stopped before ph.x wrote the q list, even
    assert ph_resume_q(wd, "ph", input_set) == 3


def test_missing_el_ph_file_means_the_q_point_is_redone(run):
    wd, input_set = run
    (wd / "ph.in").write_text("&INPUTPH\n/\n")
    (wd / "ph.out").write_text(HEADER * 3)
    _finish(wd, 1)
    _finish(wd, 2)
    (wd / "elph_dir" / "a2Fq2r.55.2").unlink()
    assert ph_resume_q(wd, "ph", input_set) == 2
    (wd / "elph_dir" / "a2Fq2r.55.2").write_text("")  # empty: cut while writing
    assert ph_resume_q(wd, "ph", input_set) == 2


@pytest.mark.qe
def test_fan_out_q_point_stopped_then_rerun_matches_uninterrupted(tmp_path, al_pseudo_dir,
                                                                   monkeypatch, require_qe):
    """A per-q job stopped by max_seconds computes its q point again, without recover."""
    import shutil

    from workflows.qe.errors import QEError
    from workflows.qe.jobs import ph_q_job, scf_job

    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path / "a"))
    input_set = maker.input_set(al)
    generator = maker.input_set_generator.pinned()
    first = maker.workdir(input_set, maker.calculation_key(input_set))
    scf_job.original(input_set.structure, generator, str(first))
    second = tmp_path / "b" / first.name
    shutil.copytree(first, second)
    ph_q_job.original(3, input_set.structure, generator, str(first))  # uninterrupted

    monkeypatch.setenv("BETE_QE_MAX_SECONDS", "0.1")  # stops at the first check on any machine
    with pytest.raises(QEError) as err:
        ph_q_job.original(3, input_set.structure, generator, str(second))
    assert err.value.kind == "time_limit"
    monkeypatch.delenv("BETE_QE_MAX_SECONDS")
    out = ph_q_job.original(3, input_set.structure, generator, str(second))
    assert out["fixes"] == []
    ph_in = (second / "ph_q3" / "ph.in").read_text()
    assert "recover" not in ph_in and "start_q = 3" in ph_in
    for name in ("bete.dyn3", "elph_dir/elph.inp_lambda.3"):
        assert (second / "ph_q3" / name).read_text() == (first / "ph_q3" / name).read_text()

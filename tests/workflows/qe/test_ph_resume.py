"""Which q point a rerun ph job resumes at: files of interrupted runs, real QE 6.7 outputs.

The per-q files are those of the real coarse Al run in tests/data/qe/al (3 irreducible q
points, 10 broadenings), renamed to the flow's ``fildyn``; a q point cut by a kill is one
of them cut short.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from workflows.qe.flows import ElphFlowMaker
from workflows.qe.jobs import ph_resume_q
from workflows.qe.ph_files import first_q_not_on_disk, q_list_count
from workflows.qe.steps import write_marker

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}
AL = Path(__file__).resolve().parents[2] / "data" / "qe" / "al"
STARTED = "     Program PHONON v.6.7MaX starts on  8Dec2026 at  1:12:40 \n"
HEADER = "     Calculation of q =    0.0000000   0.0000000   0.0000000\n"


@pytest.fixture
def run(tmp_path, al_pseudo_dir):
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    input_set = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir)
                                          ).input_set(al)
    assert input_set.ph.get("fildyn") == "bete.dyn"
    assert int(input_set.ph.get("el_ph_nsigma") or 10) == 10
    wd = tmp_path / "calc"
    (wd / "tmp").mkdir(parents=True)
    (wd / "elph_dir").mkdir()
    shutil.copy(AL / "al.dyn0", wd / "bete.dyn0")
    return wd, input_set


def _finish(wd: Path, iq: int) -> None:
    """q point ``iq``'s files as ph.x leaves them when it goes on to the next one."""
    shutil.copy(AL / f"al.dyn{iq}", wd / f"bete.dyn{iq}")
    for f in AL.glob(f"elph_dir/*.{iq}"):
        shutil.copy(f, wd / "elph_dir" / f.name)


def _cut(path: Path, fraction: float) -> None:
    """``path`` as a kill leaves it while it is written: its first bytes only."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _killed_in_q3(wd: Path) -> None:
    """ph.x (from q 1) killed in q 3: its output and ``_ph*`` state are there."""
    (wd / "ph.in").write_text("&INPUTPH\n  ldisp = .true.\n/\n")
    (wd / "ph.out").write_text(STARTED + HEADER * 3)
    (wd / "tmp" / "_ph0").mkdir()


def _start_ph(wd: Path, start_q: int | None, out: str = STARTED) -> None:
    """What ph_job and ph.x write at a start, before any q point: ph.in, a fresh ph.out,
    the q list rewritten (here: not yet flushed, so empty), the old ``_ph*`` state gone."""
    start = f"  start_q = {start_q}\n" if start_q else ""
    (wd / "ph.in").write_text(f"&INPUTPH\n{start}  ldisp = .true.\n/\n")
    (wd / "ph.out").write_text(out)
    (wd / "bete.dyn0").write_text("")
    shutil.rmtree(wd / "tmp" / "_ph0", ignore_errors=True)


def test_the_real_files_are_whole_and_the_q_list_is_read(run):
    wd, _ = run
    assert q_list_count(wd / "bete.dyn0") == 3
    for iq in (1, 2, 3):
        _finish(wd, iq)
    assert first_q_not_on_disk(wd, "bete.dyn", 10) == (4, 3)
    assert first_q_not_on_disk(wd, "bete.dyn", None) == (4, 3)


def test_first_attempt_and_finished_runs_do_not_resume(run):
    wd, input_set = run
    assert ph_resume_q(wd, "ph", input_set) is None  # no ph.out yet
    (wd / "ph.out").write_text(HEADER)
    write_marker(wd, "ph", {"wall_time_s": 1.0})
    assert ph_resume_q(wd, "ph", input_set) is None  # finished


def test_resume_at_the_first_q_point_not_on_disk(run):
    wd, input_set = run
    _start_ph(wd, None)
    assert ph_resume_q(wd, "ph", input_set) == 1  # stopped before any q point
    shutil.copy(AL / "al.dyn0", wd / "bete.dyn0")
    (wd / "ph.out").write_text(STARTED + HEADER)
    (wd / "tmp" / "_ph0").mkdir()
    assert ph_resume_q(wd, "ph", input_set) == 1
    _finish(wd, 1)
    (wd / "ph.out").write_text(STARTED + HEADER * 2)
    assert ph_resume_q(wd, "ph", input_set) == 2
    _finish(wd, 2)  # q 2 written to its last line: final, whatever ph.out says
    assert ph_resume_q(wd, "ph", input_set) == 3
    _finish(wd, 3)  # ph.x finished every q point, its job was killed before its marker
    assert ph_resume_q(wd, "ph", input_set) == 4


def test_a_resume_killed_at_any_moment_never_goes_back(run):
    """The campaign_chaos sequence (al1: q 3, then 1, then 3): q 1 and 2 finished, killed in
    q 3, resumed at q 3 and killed again right after the start wrote ph.in and ph.out, before
    ph.x wrote any q point (and before it made its ``_ph*`` state, or just after)."""
    wd, input_set = run
    _finish(wd, 1)
    _finish(wd, 2)
    shutil.copy(AL / "al.dyn3", wd / "bete.dyn3")
    _cut(wd / "bete.dyn3", 0.5)
    _killed_in_q3(wd)
    assert ph_resume_q(wd, "ph", input_set) == 3  # the first kill: in q 3

    _start_ph(wd, 3)  # killed before ph.x made its _ph0
    assert ph_resume_q(wd, "ph", input_set) == 3
    (wd / "tmp" / "_ph0").mkdir()  # ... or after; the q list not yet written again
    assert ph_resume_q(wd, "ph", input_set) == 3
    (wd / "ph.out").write_text(STARTED + HEADER)  # ... or once ph.x was in q 3 again
    assert ph_resume_q(wd, "ph", input_set) == 3
    (wd / "bete.dyn0").unlink()  # ... or with the q list gone
    assert ph_resume_q(wd, "ph", input_set) == 3
    shutil.copy(AL / "al.dyn0", wd / "bete.dyn0")
    _cut(wd / "bete.dyn0", 0.6)
    assert q_list_count(wd / "bete.dyn0") is None
    assert ph_resume_q(wd, "ph", input_set) == 3


@pytest.mark.parametrize("name", ["bete.dyn2", "elph_dir/elph.inp_lambda.2",
                                  "elph_dir/a2Fq2r.55.2", "elph_dir/a2Fq2r.60.2"])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9, 0.999])
def test_a_file_cut_while_written_means_the_q_point_is_redone(run, name, fraction):
    wd, input_set = run
    _killed_in_q3(wd)
    _finish(wd, 1)
    _finish(wd, 2)
    _cut(wd / name, fraction)
    assert ph_resume_q(wd, "ph", input_set) == 2


def test_a_file_cut_at_a_line_end_means_the_q_point_is_redone(run):
    """A kill can stop a file at the end of one of its lines: the line counts decide."""
    wd, input_set = run
    _killed_in_q3(wd)
    _finish(wd, 1)
    _finish(wd, 2)
    for name in ("bete.dyn2", "elph_dir/elph.inp_lambda.2", "elph_dir/a2Fq2r.51.2"):
        path = wd / name
        whole = path.read_text()
        for drop in (1, 2, 5):
            path.write_text("".join(whole.splitlines(keepends=True)[:-drop]))
            assert ph_resume_q(wd, "ph", input_set) == 2, (name, drop)
        path.write_text(whole)
        assert ph_resume_q(wd, "ph", input_set) == 3


def test_missing_el_ph_file_means_the_q_point_is_redone(run):
    wd, input_set = run
    _killed_in_q3(wd)
    _finish(wd, 1)
    _finish(wd, 2)
    (wd / "elph_dir" / "a2Fq2r.55.2").unlink()
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


def test_a_run_killed_after_its_last_q_point_is_not_run_again(tmp_path, al_pseudo_dir):
    """ph.x wrote every q point, the job was killed before its marker: the job records
    the step as finished and runs no ph.x (none is needed: no QE here)."""
    from workflows.qe.jobs import ph_job
    from workflows.qe.steps import read_marker

    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir))
    wd = tmp_path / "calc"
    (wd / "tmp").mkdir(parents=True)
    (wd / "elph_dir").mkdir()
    shutil.copy(AL / "al.dyn0", wd / "bete.dyn0")
    _killed_in_q3(wd)
    for iq in (1, 2, 3):
        _finish(wd, iq)
    out = ph_job.original({"is_metal": True}, al, maker.input_set_generator.pinned(), str(wd))
    assert out["resumed_at_q"] == 4 and out["wall_times_s"] == {"ph": 0.0}
    assert read_marker(wd, "ph") is not None
    assert (wd / "ph.out").read_text() == STARTED + HEADER * 3  # no ph.x ran
    assert ph_resume_q(wd, "ph", maker.input_set(al)) is None


def _launch_ph(wd: Path, ph_input) -> subprocess.Popen:
    """ph.x started as ph_job starts it: stale ``_ph*`` removed, ph.in and ph.out written."""
    from workflows.qe.run import _environment, build_command

    for stale in (wd / "tmp").glob("_ph*"):
        shutil.rmtree(stale)
    ph_input.write_file(wd / "ph.in")
    cmd = build_command("ph", "ph.in", input_text=(wd / "ph.in").read_text())
    with open(wd / "ph.out", "wb") as out:
        return subprocess.Popen(cmd, cwd=wd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_environment(cmd),
                                start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.qe
def test_real_ph_killed_in_q3_then_killed_again_at_its_restart_resumes_at_q3(
        tmp_path, al_pseudo_dir, require_qe):
    """The went-back sequence with real ph.x and SIGKILL: ph.x killed once q 1 and 2 are on
    disk; then ph.x started at q 3 and killed at several moments of its start; every resume
    answers q 3 and leaves q 1 and 2 as they were; the last one finishes at q 3."""
    from workflows.qe.jobs import ph_job, scf_job

    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path))
    input_set = maker.input_set(al)
    generator = maker.input_set_generator.pinned()
    wd = maker.workdir(input_set, maker.calculation_key(input_set))
    scf = scf_job.original(input_set.structure, generator, str(wd))

    proc = _launch_ph(wd, input_set.ph_input())
    while proc.poll() is None and first_q_not_on_disk(wd, "bete.dyn", 10)[0] < 3:
        time.sleep(0.05)
    assert proc.returncode is None, "ph.x finished before it could be killed in q 3"
    _kill(proc)
    assert ph_resume_q(wd, "ph", input_set) == 3
    finished = {p: p.read_bytes() for p in [wd / "bete.dyn1", wd / "bete.dyn2",
                                            *(wd / "elph_dir").glob("*.[12]")]}
    assert len(finished) == 2 + 2 * 11

    # ph.x's start-up (before q 3) is the window that went back; on an idle machine the
    # whole q 3 run takes 1-2 s, so the fixed delays stay well inside it
    for delay in (0.0, 0.1, 0.25, 0.5, None):  # None: once ph.x is in q 3
        proc = _launch_ph(wd, input_set.ph_input(start_q=3))
        if delay is None:
            while proc.poll() is None and "Calculation of q" not in (wd / "ph.out").read_text():
                time.sleep(0.05)
        else:
            time.sleep(delay)
        assert proc.poll() is None, f"ph.x ended before the kill at {delay} s"
        _kill(proc)
        assert ph_resume_q(wd, "ph", input_set) == 3, f"killed {delay} s after its start"
        assert all(p.read_bytes() == data for p, data in finished.items())

    out = ph_job.original(scf, input_set.structure, generator, str(wd))
    assert out["resumed_at_q"] == 3 and "start_q = 3" in (wd / "ph.in").read_text()
    assert first_q_not_on_disk(wd, "bete.dyn", 10) == (4, 3)
    assert all(p.read_bytes() == data for p, data in finished.items())

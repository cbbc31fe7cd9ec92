"""ph.x progress (q points done of those to do, time left), from real ph.x outputs."""

from __future__ import annotations

import logging
import re

import pytest
from pymatgen.core import Lattice, Structure

from tests.conftest import DATA, FCC_SITES
from workflows.qe import run as qe_run
from workflows.qe.progress import PhProgress, duration


def _feed_in_chunks(progress: PhProgress, text: str, size: int) -> list[tuple[int, str]]:
    """Feed ``text`` in pieces of ``size`` characters; (chunk index, line) at each q point."""
    said = []
    for i in range(0, len(text), size):
        if progress.feed(text[i:i + size]):
            said.append((i, progress.line(elapsed_s=10.0 * (len(said) + 1))))
    return said


@pytest.mark.parametrize(("run", "n_q"), [("al", 3), ("pb-standard", 8)])
@pytest.mark.parametrize("size", [97, 4096])
def test_every_q_point_is_counted_once_whatever_the_pieces(run, n_q, size):
    text = (DATA / "qe" / run / "ph.out").read_text()
    progress = PhProgress.from_input("&inputph\n  tr2_ph = 1e-14\n/\n")
    said = _feed_in_chunks(progress, text, size)
    assert progress.n_grid == n_q and progress.done == n_q
    assert [line.split(",")[0] for _, line in said] == [
        f"irreducible q point {k} of {n_q} done" for k in range(1, n_q + 1)]
    # 10 s per q point so far: the rest at the same pace
    assert said[0][1].endswith(f"about {duration(10.0 * (n_q - 1))} left")
    assert said[-1][1].endswith("all q points done")


def test_a_run_resumed_at_a_later_q_point_counts_from_there():
    """A resumed run (``start_q``) and a fan-out job (``start_q = last_q``)."""
    text = (DATA / "qe" / "pb-standard" / "ph.out").read_text()
    first_two = text[:text.index("Calculation of q", text.index("Diagonalizing") + 1)]
    resumed = PhProgress.from_input("&inputph\n  start_q = 7\n/\n")
    assert resumed.feed(first_two) and resumed.line(60.0) == (
        "irreducible q point 7 of 8 done, 1 min 00 s elapsed, about 1 min 00 s left")
    one = PhProgress.from_input("&inputph\n start_q = 3, last_q = 3\n/\n")
    assert not one.feed(first_two[:200]) and one.feed(first_two[200:])
    assert one.line(5.0) == "irreducible q point 3 of 3 done, 5 s elapsed, all q points done"


def test_q_points_finished_between_two_reads_each_get_their_line(tmp_path, caplog):
    """A fast ph.x can finish two q points between polls: both are logged, in order."""
    out = tmp_path / "ph.out"
    out.write_text("     Dynamical matrices for ( 2, 2, 2)  uniform grid of q-points\n"
                   "     (   3 q-points):\n")
    watch = qe_run.OutputWatcher("ph", "&inputph\n/\n", out, start=0.0)
    watch.poll()
    with out.open("a") as fh:
        fh.write("     Diagonalizing the dynamical matrix\n" * 2)
    with caplog.at_level(logging.INFO, logger="workflows.qe.progress"):
        watch.poll()
    lines = [re.sub(r",.*", "", r.getMessage()) for r in caplog.records]
    assert lines == ["ph.x: irreducible q point 1 of 3 done",
                     "ph.x: irreducible q point 2 of 3 done"]


def test_durations():
    assert [duration(s) for s in (0.4, 59, 61, 3599, 3725)] == [
        "0 s", "59 s", "1 min 01 s", "59 min 59 s", "1 h 02 min"]


@pytest.mark.qe
def test_a_real_ph_run_logs_each_q_point_while_it_runs(tmp_path, require_qe, caplog,
                                                       monkeypatch):
    """fcc Al, Debian's LDA file, 2³ k and q, 15 Ry, no el-ph: three q points, ~15 s."""
    from workflows.qe.sets import ElphInputGenerator

    monkeypatch.setattr(qe_run, "POLL_S", 0.2)
    tiny = {"k_grid": [2, 2, 2], "k_grid_dense": [2, 2, 2], "q_grid": [2, 2, 2],
            "ecutwfc": 15, "ecutrho": 60}
    inputs = ElphInputGenerator("fast", tiny, family="debian").get_input_set(
        Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES))
    inputs.scf.write_file(tmp_path / "scf.in")
    ph = inputs.ph_input()
    for key in ("electron_phonon", "el_ph_sigma", "el_ph_nsigma", "fildvscf"):
        ph.namelists["inputph"].pop(key, None)
    ph.write_file(tmp_path / "ph.in")
    qe_run.run_qe("pw", "scf.in", tmp_path)
    with caplog.at_level(logging.INFO, logger="workflows.qe.progress"):
        qe_run.run_qe("ph", "ph.in", tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "workflows.qe.progress"]
    assert [re.sub(r",.*", "", m) for m in lines] == [
        f"ph.x: irreducible q point {k} of 3 done" for k in (1, 2, 3)]
    assert "left" in lines[0] and lines[-1].endswith("all q points done")

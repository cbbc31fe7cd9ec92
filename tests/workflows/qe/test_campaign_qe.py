"""``bete campaign`` with real QE on tiny fcc Al cells: kill -9 and rerun, two processes.

Each cell is the 1-atom fcc Al cell with Debian's LDA file, 2³ k / 2³ q grids, 15 Ry and a
coarse matdyn mesh: about 40 s of QE on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from stores.config import load_job_store
from tests.conftest import FCC_SITES, REPO
from workflows.qe.run import stray_qe_processes

pytestmark = [pytest.mark.qe, pytest.mark.slow]

TINY = {"k_grid": [2, 2, 2], "k_grid_dense": [4, 4, 4], "q_grid": [2, 2, 2],
        "ecutwfc": 15, "ecutrho": 60, "matdyn": {"input": {"nk1": 8, "nk2": 8, "nk3": 8}}}
FINISHED = ("completed stable", "unstable")


def make_cells(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "cells"
    folder.mkdir()
    for i in range(n):
        a = 4.04 + 0.03 * i
        Structure(Lattice.cubic(a), ["Al"] * 4, FCC_SITES).to(filename=str(folder / f"al{i}.cif"))
    return folder


def command(tmp_path: Path, cells: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from launchers.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "campaign", str(cells), "--override",
            json.dumps(TINY), "--store", str(tmp_path / "store"), "--scratch",
            str(tmp_path / "scratch"), "--format", "json"]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def rows(stdout: str) -> list[dict]:
    return [r for r in json.loads(stdout) if "source_id" in r]


def elph_docs(tmp_path: Path) -> list[dict]:
    store = load_job_store(str(tmp_path / "store"))
    store.connect()
    try:
        return [d["output"] for d in store.query({"output.doc_type": "elph_task"})]
    finally:
        store.close()


def wait_for(predicate, timeout_s: float = 900.0) -> None:
    end = time.time() + timeout_s
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for the campaign")


@pytest.mark.parametrize("kill_during", ["scf", "ph"])
def test_kill_9_then_rerun_repeats_no_finished_step(tmp_path, require_qe, kill_during):
    cells = make_cells(tmp_path, 1)
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(command(tmp_path, cells), cwd=tmp_path, env=environment(),
                             stdout=log, stderr=subprocess.STDOUT)

    def running(step: str) -> bool:
        found = list((tmp_path / "scratch").glob(f"Al-*/{step}.out"))
        return bool(found) and "Program" in found[0].read_text(errors="replace")

    wait_for(lambda: running(kill_during) or first.poll() is not None)
    assert first.poll() is None, (tmp_path / "first.log").read_text()
    workdir = next((tmp_path / "scratch").glob("Al-*"))
    os.kill(first.pid, signal.SIGKILL)          # the Python process only: QE goes on
    first.wait()
    log.close()
    done = {m.stem: (m.read_text(), (workdir / f"{m.stem}.out").read_text())
            for m in (workdir / ".bete").glob("*.json") if (workdir / f"{m.stem}.out").is_file()}
    assert ("scf_dense" in done) == (kill_during != "scf_dense")
    rerun = subprocess.run(command(tmp_path, cells), cwd=tmp_path, env=environment(),
                           capture_output=True, text=True, timeout=1500)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (row,) = rows(rerun.stdout)
    assert row["outcome"] in FINISHED and row["new"] is True
    # no finished QE step ran again: markers and outputs as the killed run left them
    for step, (marker, output) in done.items():
        assert (workdir / ".bete" / f"{step}.json").read_text() == marker, step
        assert (workdir / f"{step}.out").read_text() == output, step
        assert f"{step}: already finished" in rerun.stderr
    # one whole document, no claim left, no QE process left behind
    docs = elph_docs(tmp_path)
    assert len(docs) == 1 and docs[0]["status"] in ("completed", "unstable")
    assert docs[0]["protocol_fingerprint"] and docs[0]["a2f_spectra"] is not None
    assert not list((tmp_path / "store" / "claims").glob("*.claim"))
    assert stray_qe_processes(workdir) == []
    # and a third run computes nothing
    again = subprocess.run(command(tmp_path, cells), cwd=tmp_path, env=environment(),
                           capture_output=True, text=True, timeout=600)
    (row,) = rows(again.stdout)
    assert row["new"] is False and row["outcome"] in FINISHED
    assert "running pw" not in again.stderr and len(elph_docs(tmp_path)) == 1


def test_sigterm_stops_qe_and_releases_the_claim(tmp_path, require_qe):
    """A background campaign ignores SIGINT; SIGTERM to its Python process stops it cleanly."""
    cells = make_cells(tmp_path, 1)
    first = subprocess.Popen(command(tmp_path, cells), cwd=tmp_path, env=environment(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    wait_for(lambda: bool(list((tmp_path / "scratch").glob("Al-*/ph.out")))
             or first.poll() is not None)
    assert first.poll() is None
    workdir = next((tmp_path / "scratch").glob("Al-*"))
    os.kill(first.pid, signal.SIGINT)           # ignored, as under nohup ... &
    time.sleep(1)
    assert first.poll() is None
    os.kill(first.pid, signal.SIGTERM)
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 130 and "interrupted; rerun" in err, err[-2000:]
    assert stray_qe_processes(workdir) == []
    assert not list((tmp_path / "store" / "claims").glob("*.claim"))
    assert elph_docs(tmp_path) == []
    rerun = subprocess.run(command(tmp_path, cells), cwd=tmp_path, env=environment(),
                           capture_output=True, text=True, timeout=1500)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "scf_dense: already finished" in rerun.stderr
    assert len(elph_docs(tmp_path)) == 1


def test_two_processes_share_the_work(tmp_path, require_qe):
    cells = make_cells(tmp_path, 3)
    procs = [subprocess.Popen(command(tmp_path, cells), cwd=tmp_path, env=environment(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=2400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    computed = [r["source_id"] for out, _ in outputs for r in rows(out) if r["new"]]
    assert sorted(computed) == ["al0", "al1", "al2"]   # each by exactly one process
    docs = elph_docs(tmp_path)
    assert sorted(d["source_id"] for d in docs) == ["al0", "al1", "al2"]  # none lost, none twice
    for workdir in (tmp_path / "scratch").glob("Al-*"):
        marker = json.loads((workdir / ".bete" / "scf_dense.json").read_text())
        assert marker["attempts"] == 1
        assert (workdir / "scf_dense.out").read_text().count("Program PWSCF") == 1
    assert not list((tmp_path / "store" / "claims").glob("*.claim"))

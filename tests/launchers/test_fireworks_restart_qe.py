"""A DFPT job stopped or killed under FireWorks fizzles; ``rerun`` + launch finishes it (real QE).

One mongomock LaunchPad and one embedded JobStore hold three copies of the same coarse fcc Al
flow, each in its own calculation directory (same input hash, so submitted without dedup):

- ``reference`` runs uninterrupted first; its ph.x output gives the times at which each
  irreducible q point started;
- ``stopped``: ph.x reaches ``max_seconds`` (``BETE_QE_MAX_SECONDS``, set only while the ph
  Firework runs, halfway through the second q point of the reference), the Firework
  fizzles, :func:`launchers.fireworks.rerun_fireworks` resets it and the next launch resumes
  ph.x at the q point it was in (``start_q``), keeping the finished one;
- ``killed``: a watcher thread SIGKILLs the ph.x processes (not the launcher) once ph.x has
  started its second q point; the Firework fizzles, is rerun and resumes the same way.

Both interrupted flows must end with the reference λ within 2 %.  A resume at q point 2
reproduces the reference bit for bit; a q point computed first in its ph.x process (start_q=3,
like the per-q fan-out's ``ph_q3``) gives slightly different el-ph matrix elements at that q
(λ about 1 % off for this coarse Al, as in the fan-out test).  (QE 6.7's own
``recover=.true.`` is not used: after a ``max_seconds`` stop it gave λ 3-4 % off, and it cannot
read the state of a killed el-ph run; see :func:`workflows.qe.jobs.ph_resume_q`.)
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from launchers import fireworks as fw

pytestmark = [pytest.mark.qe, pytest.mark.slow]

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}
Q_POINT = "Calculation of q ="


def _al() -> Structure:
    return Structure(Lattice.cubic(4.04), ["Al"] * 4,
                     [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


class PhKiller(threading.Thread):
    """Send ``sig`` to this process's ph.x descendants once ``ph.out`` shows ``n_q`` q points.

    Only QE's own processes are signalled (found with psutil among the children of the
    test process), never the launcher: what a node failure or an OOM kill does to a job.
    """

    def __init__(self, ph_out: Path, n_q: int = 2, sig: int = signal.SIGKILL,
                 timeout_s: float = 600.0) -> None:
        super().__init__(daemon=True)
        self.ph_out, self.n_q, self.sig, self.timeout_s = ph_out, n_q, sig, timeout_s
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        end = time.monotonic() + self.timeout_s
        me = psutil.Process()
        while not self.stop.is_set() and time.monotonic() < end:
            text = self.ph_out.read_text(errors="replace") if self.ph_out.is_file() else ""
            if text.count(Q_POINT) >= self.n_q:
                procs = [p for p in me.children(recursive=True) if p.name() == "ph.x"]
                for proc in procs:
                    proc.send_signal(self.sig)
                    self.killed.append(proc.pid)
                if procs:
                    return
            time.sleep(0.1)


def _fw_ids(launchpad, wf_id: int) -> dict[str, int]:
    [flow] = [f for f in fw.workflow_status(launchpad) if f["wf_id"] == wf_id]
    return {j["name"]: j["fw_id"] for j in flow["jobs"]}


def _state(launchpad, fw_id: int) -> str:
    return launchpad.fireworks.find_one({"fw_id": fw_id}, {"state": 1})["state"]


def _q_start_times(ph_out: str) -> list[float]:
    """Wall time (s) ph.x had used when each q point's phonon part started."""
    times, seen = [], 0
    for line in ph_out.splitlines():
        if Q_POINT in line:
            seen += 1
        elif seen > len(times) and line.strip().startswith("PHONON") and "WALL" in line:
            wall = re.search(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*([\d.]+)s WALL", line)
            h, m, sec = wall.groups()
            times.append(3600 * int(h or 0) + 60 * int(m or 0) + float(sec))
    return times


def test_stopped_and_killed_ph_fizzle_then_rerun_resumes(launchpad, job_store, tmp_path,
                                                         monkeypatch, pslibrary_dir,
                                                         require_qe):
    from workflows.qe.flows import ElphFlowMaker
    from workflows.qe.steps import marker_path

    runs = tmp_path / "launches"
    cases = ("reference", "stopped", "killed")
    flows, workdirs, ids = {}, {}, {}
    for case in cases:
        maker = ElphFlowMaker.from_preset("fast", COARSE, str(pslibrary_dir),
                                          scratch_dir=str(tmp_path / case))
        input_set = maker.input_set(_al())
        workdirs[case] = maker.workdir(input_set, maker.calculation_key(input_set))
        flows[case] = maker.make(_al(), source_id=case)
        [sub] = fw.submit_flows(flows[case], launchpad, dedup_key=None)
        ids[case] = _fw_ids(launchpad, min(sub.fw_ids))
    for name in ("scf", "ph", "q2r_matdyn", "elph_task_document"):
        assert fw.launch_singleshot(launchpad, store=job_store, fw_id=ids["reference"][name],
                                    launch_dir=runs)
    for case in ("stopped", "killed"):
        assert fw.launch_singleshot(launchpad, store=job_store, fw_id=ids[case]["scf"],
                                    launch_dir=runs)
    assert {_state(launchpad, i) for i in ids["reference"].values()} == {"COMPLETED"}
    starts = _q_start_times((workdirs["reference"] / "ph.out").read_text())
    assert len(starts) == 3, starts  # Γ, X-like and L-like points of the 2x2x2 grid

    # (a) ph.x reaches max_seconds inside q point 2: a clean stop, the Firework fizzles
    stopped = workdirs["stopped"]
    monkeypatch.setenv("BETE_QE_MAX_SECONDS", f"{(starts[1] + starts[2]) / 2:.1f}")
    fw.launch_singleshot(launchpad, store=job_store, fw_id=ids["stopped"]["ph"], launch_dir=runs)
    monkeypatch.delenv("BETE_QE_MAX_SECONDS")
    assert _state(launchpad, ids["stopped"]["ph"]) == "FIZZLED"
    first_out = (stopped / "ph.out").read_text()
    assert "Maximum CPU time exceeded" in first_out
    assert "max_seconds" in (stopped / "ph.in").read_text()
    assert not marker_path(stopped, "ph").exists()
    stopped_in = first_out.count(Q_POINT)

    # (b) ph.x killed by a signal once it has started q point 2: the Firework fizzles
    killed = workdirs["killed"]
    killer = PhKiller(killed / "ph.out", n_q=2)
    killer.start()
    try:
        fw.launch_singleshot(launchpad, store=job_store, fw_id=ids["killed"]["ph"],
                             launch_dir=runs)
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed, "ph.x was never seen running"
    assert _state(launchpad, ids["killed"]["ph"]) == "FIZZLED"
    assert "JOB DONE" not in (killed / "ph.out").read_text()
    assert not marker_path(killed, "ph").exists()

    # rerun (the project's function, as `bete rerun --fizzled` calls it), then launch
    reset = fw.rerun_fireworks(launchpad, fizzled=True)
    assert set(reset) == {ids["stopped"]["ph"], ids["killed"]["ph"]}
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=runs, sleep_time_s=0)
    status = {f["wf_id"]: f["state"] for f in fw.workflow_status(launchpad)}
    assert set(status.values()) == {"COMPLETED"}, status

    job_store.connect()
    docs = {c: job_store.get_output(flows[c].output.uuid, load=True) for c in cases}
    ph_out = {c: job_store.get_output(flows[c].jobs[1].uuid) for c in cases}
    lam = {c: docs[c]["lambda_"] for c in cases}
    print(f"\nq start times {starts}; max_seconds stop in q {stopped_in}\nlambda: {lam}\n"
          f"ph outputs: {ph_out}")
    assert all(d["status"] == "completed" for d in docs.values())
    assert 0.2 < lam["reference"] < 1.5
    for case in ("stopped", "killed"):
        assert lam[case] == pytest.approx(lam["reference"], rel=0.02), case
        # the rerun replaced the fizzled job's output: one document per job
        assert job_store.count({"uuid": flows[case].jobs[1].uuid}) == 1
        assert ph_out[case]["fixes"] == []  # no handler retry: the rerun itself resumed
        assert not any("automatic retry" in w for w in docs[case]["warnings"])
        ph_in = (workdirs[case] / "ph.in").read_text()
        assert "recover" not in ph_in
        resumed_at = ph_out[case]["resumed_at_q"]
        rerun_out = (workdirs[case] / "ph.out").read_text()
        assert "JOB DONE" in rerun_out
        # only the q points from the resumed one on were computed again
        assert rerun_out.count(Q_POINT) == 3 - resumed_at + 1, case
        if resumed_at > 1:
            assert f"start_q = {resumed_at}" in ph_in
    assert ph_out["reference"]["resumed_at_q"] is None
    assert ph_out["killed"]["resumed_at_q"] == 2  # q point 1 was finished and kept
    assert ph_out["stopped"]["resumed_at_q"] == stopped_in
    assert stopped_in >= 2, f"max_seconds stopped ph.x in q point {stopped_in}; machine slower?"

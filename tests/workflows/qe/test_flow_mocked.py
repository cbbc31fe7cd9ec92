"""The flow's logic (jobs, markers, reuse, documents) with QE mocked at its one seam."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from stores.config import load_job_store
from tests.workflows.qe.mock_qe import FakeQE
from workflows.qe import run as qe_run
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200, "nbnd": 10}


@pytest.fixture
def fake_qe(monkeypatch):
    fake = FakeQE()
    monkeypatch.setattr(qe_run, "run_qe", fake)
    return fake


def _al():
    return Structure(Lattice.cubic(4.04), ["Al"] * 4,
                     [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def test_flow_runs_every_step_once_and_stores_the_document(fake_qe, tmp_path, al_pseudo_dir):
    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path / "scratch"))
    (outcome,) = run_elph([("al", _al())], maker, store)
    assert fake_qe.calls == ["scf_dense", "scf", "ph", "q2r", "matdyn_crystal"]
    doc = outcome.document
    assert doc["status"] == "completed" and doc["lambda_"] == pytest.approx(1.21, rel=0.02)
    assert doc["job_uuids"].keys() >= {"scf", "ph", "q2r_matdyn"}
    # reuse: nothing runs again, nothing is stored twice
    (again,) = run_elph([("al", _al())], maker, store)
    assert again.reused and fake_qe.calls == ["scf_dense", "scf", "ph", "q2r", "matdyn_crystal"]
    assert store.count({"output.doc_type": "elph_task"}) == 1


def test_warnings_reach_the_progress_lines(fake_qe, tmp_path, al_pseudo_dir):
    """A threshold above the real Al spectrum's lowest frequency makes the run 'unstable'."""
    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path / "scratch"),
                                      stability_threshold_meV=5.0)
    for _ in range(2):  # computed, then reused: the user sees the warnings both times
        lines: list[str] = []
        (outcome,) = run_elph([("al", _al())], maker, store, progress=lines.append)
        assert outcome.document["status"] == "unstable"
        warned = [ln for ln in lines if ": warning: dynamically unstable" in ln]
        assert len(warned) == 1 and warned[0].startswith("[1/1] Al (al, ")
    # reused with another μ*: the stored Tc is not silently passed off as the new one
    lines = []
    other = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path / "scratch"),
                                      stability_threshold_meV=5.0, mu_star=0.13)
    (outcome,) = run_elph([("al", _al())], other, store, progress=lines.append)
    assert outcome.reused and outcome.document["mu_star"] == pytest.approx(0.10)
    assert any("analysed with mu_star 0.1 (asked 0.13)" in ln for ln in lines)


def test_scratch_is_removed_after_matdyn_unless_kept(fake_qe, tmp_path, al_pseudo_dir):
    store = load_job_store(tmp_path / "store")
    store.connect()
    for keep in (False, True):
        maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                          scratch_dir=str(tmp_path / f"scratch-{keep}"),
                                          keep_scratch=keep)
        workdir = maker.workdir(maker.input_set(_al()), maker.calculation_key(
            maker.input_set(_al())))
        (workdir / "tmp" / "_ph0").mkdir(parents=True)
        (workdir / "tmp" / "_ph0" / "bete.dvscf1").write_bytes(b"x" * 1000)
        run_elph([("al", _al())], maker, store, reuse=False)
        assert (workdir / "tmp" / "_ph0").exists() is keep
        assert (workdir / "bete.fc").exists()


def test_settings_are_read_when_the_flow_runs_not_at_import(monkeypatch, tmp_path):
    monkeypatch.setenv("BETE_MPI_CMD", "srun")
    monkeypatch.setenv("BETE_MPI_NP_FLAG", "-n")
    monkeypatch.setenv("BETE_NPROCS", "64")
    cmd = qe_run.build_command("ph", "ph.in")
    assert cmd[:3] == ["srun", "-n", "64"] and "ph.x" in cmd


def test_campaign_progress_lines_carry_the_campaign_counter(fake_qe, tmp_path, al_pseudo_dir):
    """The campaign's own ``campaign [i/n]`` label, not the inner runner's ``[1/1]``."""
    from stores.claims import ClaimBoard
    from workflows.qe.campaign import plan_campaign, run_campaign

    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path / "scratch"))
    planned, _ = plan_campaign([("al", _al())], maker)
    lines: list[str] = []
    (outcome,) = run_campaign(planned, maker, store, ClaimBoard(tmp_path / "claims"),
                              progress=lines.append)
    assert outcome.outcome == "completed stable" and outcome.new
    assert lines and all(ln.startswith("campaign [1/1] Al (al, ") for ln in lines), lines
    assert any(": running " in ln for ln in lines)


def test_jobs_carry_the_flow_generator_as_json_to_another_worker(fake_qe, tmp_path,
                                                                 al_pseudo_dir, monkeypatch):
    """A FireWorks worker reads each job from JSON, elsewhere, with its own settings: the
    flow's generator (family setting read and made absolute at ``make``) travels with the
    jobs, so the worker builds the inputs the flow was made for."""
    import json

    from jobflow import Flow
    from monty.json import MontyDecoder, MontyEncoder

    from workflows.qe.local import run_flow_locally
    from workflows.qe.sets import ElphInputGenerator

    here = tmp_path / "submit"
    here.mkdir()
    (here / "pseudo").symlink_to(al_pseudo_dir)
    monkeypatch.chdir(here)
    monkeypatch.setenv("BETE_PSEUDO_FAMILY", "pseudo")  # relative: only valid here, now
    maker = ElphFlowMaker.from_preset(overrides=COARSE, scratch_dir=str(tmp_path / "scratch"))
    expected = maker.input_set(_al())
    flow = maker.make(_al(), source_id="al", input_set=expected)
    key = flow.jobs[-1].metadata["input_hash"]
    text = json.dumps(flow, cls=MontyEncoder)

    worker = tmp_path / "worker"
    worker.mkdir()
    monkeypatch.chdir(worker)
    monkeypatch.setenv("BETE_PSEUDO_FAMILY", str(tmp_path / "no-such-family"))
    decoded = MontyDecoder().decode(text)
    assert isinstance(decoded, Flow)
    generators = [[a for a in j.function_args if isinstance(a, ElphInputGenerator)]
                  for j in decoded.jobs]
    assert all(len(g) == 1 for g in generators)  # every job: the generator, typed
    assert generators[0][0].family == str(al_pseudo_dir.resolve())
    store = load_job_store(tmp_path / "store")
    store.connect()
    doc = run_flow_locally(decoded, store)
    assert fake_qe.calls == ["scf_dense", "scf", "ph", "q2r", "matdyn_crystal"]
    assert doc.input_hash == key and doc.status == "completed"
    assert doc.parameters == expected.parameters  # every job built the submitted inputs


def test_a_resumed_flow_stores_each_job_output_once(fake_qe, tmp_path, al_pseudo_dir,
                                                    monkeypatch):
    """Stopped in q2r (as a kill stops it), resumed: the finished scf and ph jobs run again
    (their QE steps skipped by the markers) but their outputs replace the stored ones: four
    job documents for the calculation, not six (benchmarks/campaign_chaos.py counted up to
    12 after many kills)."""
    from pathlib import Path

    store = load_job_store(tmp_path / "store")
    store.connect()
    maker = ElphFlowMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir),
                                      scratch_dir=str(tmp_path / "scratch"))

    def stopped_in_q2r(code, input_file, *args, **kwargs):
        if Path(input_file).stem == "q2r":
            raise KeyboardInterrupt
        return fake_qe(code, input_file, *args, **kwargs)

    monkeypatch.setattr(qe_run, "run_qe", stopped_in_q2r)
    with pytest.raises(KeyboardInterrupt):
        run_elph([("al", _al())], maker, store)
    key = maker.calculation_key(maker.input_set(_al()))
    assert store.count({"metadata.input_hash": key}) == 2          # scf and ph were stored
    monkeypatch.setattr(qe_run, "run_qe", fake_qe)
    (outcome,) = run_elph([("al", _al())], maker, store)
    assert outcome.document["status"] == "completed"
    assert fake_qe.calls == ["scf_dense", "scf", "ph", "q2r", "matdyn_crystal"]  # none twice
    stored = list(store.query({"metadata.input_hash": key}))
    assert sorted(d["name"] for d in stored) == ["elph_task_document", "ph", "q2r_matdyn",
                                                 "scf"]
    assert set(outcome.document["job_uuids"].values()) <= {d["uuid"] for d in stored}

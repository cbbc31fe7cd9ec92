"""A real active-learning campaign: tiny ensemble, three 1-atom candidates, real QE (coarse).

Round 1 verifies the top two with the DFPT el-ph flow, round 2 retrains on the initial
records plus the verified ones and verifies what is left.  About 4-6 minutes on 2 cores.
"""

import json

import pytest
from pymatgen.core import Lattice, Structure

from launchers.cli import main
from stores.records import iter_screening_documents, load_rounds
from tests.conftest import PSLIBRARY
from tests.workflows.screening.conftest import TINY_NETWORK, bcc, fcc
from workflows.screening.active_learning import ActiveLearningConfig, run_active_learning

pytestmark = [pytest.mark.qe, pytest.mark.slow]

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}


def test_two_real_rounds(tmp_path, store, fast_v1_dir, require_qe):
    from betenet_model.training import TrainConfig
    from stores.config import load_job_store  # noqa: F401  (store fixture is embedded)
    from stores.datasets import load_fast_v1
    from workflows.ml.train import train_from_records

    initial = load_fast_v1(fast_v1_dir)
    model = tmp_path / "tiny"
    train_from_records(initial[:6], model, members=2, seed=0,
                       training=TrainConfig(max_epochs=10, schedule="early_stopping",
                                            checkpoint_every=0), network_options=TINY_NETWORK)
    cands = tmp_path / "cands"
    cands.mkdir()
    fcc("Al", 4.04).to(filename=str(cands / "Al.cif"))
    bcc("Li", 3.44).to(filename=str(cands / "Li.cif"))
    bcc("Na", 4.23).to(filename=str(cands / "Na.cif"))
    Structure(Lattice.cubic(4.0), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                             [0, 0.5, 0.5]]).to(filename=str(cands / "Al2.json"))
    config = ActiveLearningConfig(
        candidates=[str(cands)], rounds=2, top_k=2, model=str(model), overrides=COARSE,
        pseudos=str(PSLIBRARY), initial_data=str(fast_v1_dir), members=2, max_epochs=10,
        network=TINY_NETWORK, models_dir=str(tmp_path / "models"),
        scratch_dir=str(tmp_path / "scratch"), acquisition="ucb",
        prescreen=False)  # counts DFPT runs; test_prescreen.py tests the pre-screen
    rounds = run_active_learning(config, store, say=print)
    r1, r2 = rounds
    assert r1["status"] == r2["status"] == "completed"
    assert r1["n_screened"] == 3 and len(r1["verified"]) == 2 and len(r2["verified"]) == 1
    for v in r1["verification"] + r2["verification"]:
        assert v["status"] in ("completed", "unstable"), v
        assert v["lambda_computed"] is not None and v["tc_K_predicted"] is not None
    stable = [v for v in r1["verification"] if v["status"] == "completed"
              and v["dynamically_stable"]]
    n_initial = len(initial)
    assert r1["n_training"] == 6
    # round 2 may train only on rows of the verification protocol (COARSE overrides, not
    # fast-v1's): with fewer than 4 of them it keeps round 1's model instead of mixing protocols
    assert len(stable) < 4 < n_initial
    assert r2["n_training"] == r1["n_training"]
    docs = [d for d in iter_screening_documents(store) if d.get("verification")]
    assert len(docs) == 3
    # the CLI sees the same campaign
    store.close()
    spec = str(tmp_path / "store")
    assert main(["al", "status", "--store", spec, "--format", "json"]) == 0
    assert main(["al", "report", "--store", spec, "--out", str(tmp_path / "al.png")]) == 0
    assert (tmp_path / "al.png").stat().st_size > 5000
    store.connect()
    assert len(load_rounds(store)) == 2
    json.dumps(rounds)

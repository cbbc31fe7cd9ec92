import json

import pytest
import torch

from launchers.cli import main
from tests.conftest import PSLIBRARY
from tests.workflows.screening.conftest import TINY_NETWORK, fcc
from workflows.screening.phonons import PhononDosMaker, phonon_only_inputs

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "ecutwfc": 25, "ecutrho": 200}


@pytest.fixture(scope="module")
def cpd_model(tmp_path_factory):
    from betenet_model.training import TrainConfig
    from stores.datasets import load_fast_v1
    from workflows.ml.train import train_from_records

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cpd") / "ens"
    train_from_records(load_fast_v1(None)[:6], out, variant="cpd", members=2, seed=0,
                       training=TrainConfig(max_epochs=5, schedule="early_stopping",
                                            checkpoint_every=0), network_options=TINY_NETWORK)
    torch.set_num_threads(threads)
    return out


def test_phonon_only_inputs_drop_the_electron_phonon_part(al_pseudo_dir):
    maker = PhononDosMaker.from_preset(overrides=COARSE, pseudo_family=str(al_pseudo_dir))
    input_set = maker.input_set(fcc("Al", 4.04))
    assert input_set.q_grid == [2, 2, 2]
    inputs = phonon_only_inputs(input_set)
    ph = inputs["ph"].namelists["inputph"]
    assert "electron_phonon" not in ph and "el_ph_sigma" not in ph and ph["ldisp"]
    assert "electron_phonon" in input_set.ph.namelists["inputph"]      # original untouched
    assert "la2f" not in inputs["q2r"].namelists["input"]
    assert inputs["matdyn"].namelists["input"]["dos"] is True
    assert "la2f" not in inputs["scf"].namelists.get("system", {})
    key = maker.calculation_key(input_set)
    assert key != input_set.input_hash() and key == maker.calculation_key(input_set)


def test_cpd_screening_rejects_candidates_without_a_dos(cpd_model, tmp_path, capsys,
                                                        pslibrary_dir):
    fcc("Al", 4.04).to(filename=str(tmp_path / "Al.cif"))
    rc = main(["screen", str(tmp_path / "Al.cif"), "--model", str(cpd_model), "--store",
               str(tmp_path / "s"), "--format", "json", "--pseudos", str(pslibrary_dir)])
    err = capsys.readouterr().err
    assert rc == 2  # nothing left to rank: the causes, grouped
    assert "needs_phonon_dos (1): Al -- no coarse phonon DOS" in err and "phonon-only" in err


@pytest.mark.qe
def test_cpd_screening_computes_the_coarse_dos(cpd_model, tmp_path, capsys, require_qe):
    if not PSLIBRARY.exists():
        pytest.skip("../shared/pseudo is not here")
    fcc("Al", 4.04).to(filename=str(tmp_path / "Al.cif"))
    args = ["screen", str(tmp_path / "Al.cif"), "--model", str(cpd_model), "--store",
            str(tmp_path / "s"), "--format", "json", "--pseudos", str(PSLIBRARY),
            "--override", json.dumps(COARSE), "--compute-phonons"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["status"] == "ranked" and out[0]["tc_K_mean"] >= 0
    # second time: the DOS comes from the store, no QE
    assert main(args) == 0
    assert "phonon-only DFPT" not in capsys.readouterr().err
    from stores.config import load_job_store

    store = load_job_store(str(tmp_path / "s"))
    store.connect()
    try:
        docs = list(store.query({"output.doc_type": "coarse_phdos"}, load=True))
        assert len(docs) == 1
        doc = docs[0]["output"]
        assert doc["q_grid"] == [2, 2, 2] and doc["dynamically_stable"]
        assert len(doc["phdos"]["site_dos"]) == 1
        assert set(doc["wall_times_s"]) == {"scf", "ph", "q2r", "matdyn"}
    finally:
        store.close()

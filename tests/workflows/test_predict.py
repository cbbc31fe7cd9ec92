import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from betenet_model.targets import GRID_MEV
from betenet_model.training import TrainConfig
from stores.datasets import load_fast_v1
from workflows.common.physics import einstein_a2f, superconductivity
from workflows.ml.data import record_truth, structure_arrays, structure_sample
from workflows.ml.evaluate import average_precision, evaluate_records
from workflows.ml.predict import predict_structures, spectrum_properties
from workflows.ml.train import train_from_records

TINY = {"mul": 4, "embed_dim": 8, "radial_neurons": 8}


@pytest.fixture(scope="module")
def records():
    return load_fast_v1()


@pytest.fixture(scope="module")
def ensemble(records, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train = [r for r in records if r.formula in ("Pb", "Ta", "Ca", "MgTl", "V")]
    ens = train_from_records(train, tmp_path_factory.mktemp("ens"), members=3, seed=1,
                             training=TrainConfig(max_epochs=6, checkpoint_every=0),
                             network_options=TINY)
    yield ens
    torch.set_num_threads(threads)


def test_record_truth_reproduces_the_fast_v1_labels(records):
    for rec in records:
        truth = record_truth(rec)
        assert truth.lambda_ == pytest.approx(rec.labels["lambda_"], rel=1e-6)
        assert truth.omega_log_K == pytest.approx(rec.labels["omega_log_K"], rel=1e-6)
        assert truth.tc_allen_dynes_K == pytest.approx(rec.labels["tc_allen_dynes_K"],
                                                       rel=1e-6, abs=1e-9)


def test_spectrum_properties_use_the_physics_module():
    spec = einstein_a2f(GRID_MEV, 20.25, 1.0, width_meV=3.0)
    props = spectrum_properties(np.stack([spec, 2 * spec]))
    ref = superconductivity(GRID_MEV, spec)
    assert props["lambda"][0] == pytest.approx(ref.lambda_)
    assert props["tc_K"][0] == pytest.approx(ref.tc_allen_dynes_K)
    assert props["lambda"][1] == pytest.approx(2 * ref.lambda_)


def test_structure_arrays_and_variants():
    s = Structure(Lattice.cubic(3.0), ["Nb", "Sn"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    lattice, pos, z = structure_arrays(s)
    assert lattice.shape == (3, 3) and pos[1] == pytest.approx([1.5, 1.5, 1.5])
    assert z.tolist() == [41, 50]
    with pytest.raises(ValueError, match="site-projected"):
        structure_sample(s, variant="fpd")
    w = np.linspace(0, 40, 81)
    sample = structure_sample(s, variant="cpd", site_dos_frequencies_meV=w,
                              site_dos=np.ones((2, 81)))
    assert sample.site_dos.shape == (2, 51)
    disordered = Structure(Lattice.cubic(3.0), [{"Nb": 0.5, "Sn": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="disordered"):
        structure_arrays(disordered)


def test_predict_mean_sigma_and_members(ensemble, records):
    pb = next(r for r in records if r.formula == "Pb")
    preds = predict_structures([pb.structure], ensemble, ids=["pb"])
    (p,) = preds
    assert p.id == "pb" and p.formula == "Pb" and not p.warnings
    assert p.a2f_mean.shape == (51,) and p.a2f_std.shape == (51,)
    assert p.members["lambda"].shape == (3,)
    assert p.mean["lambda"] == pytest.approx(p.members["lambda"].mean())
    assert p.std["tc_K"] == pytest.approx(p.members["tc_K"].std(ddof=1))
    spectra = ensemble.predict_spectra([structure_sample(pb.structure)])
    np.testing.assert_allclose(p.a2f_mean, spectra[:, 0].mean(axis=0))
    row = p.row(spectra=True)
    assert {"lambda", "lambda_std", "omega_log_K", "omega_2_K", "tc_K", "tc_K_std",
            "a2f_mean"} <= set(row)


def test_unknown_element_warning(ensemble):
    cu = Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    pb_cu = Structure(Lattice.cubic(4.0), ["Pb", "Cu"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    preds = predict_structures([cu, pb_cu], ensemble)
    assert preds[0].unknown_elements == ["Cu"] and "Cu" in preds[0].warnings[0]
    assert preds[1].unknown_elements == ["Cu"]
    assert "extrapolation" in preds[1].row()["warnings"]


def test_evaluate_records(ensemble, records):
    metrics, rows = evaluate_records(ensemble, records[:6])
    for key in ("n", "mae_lambda", "mae_omega_log_K", "mae_omega_2_K", "mae_tc_K",
                "baseline_mae_lambda", "baseline_mae_tc_K", "average_precision_tc5",
                "random_average_precision_tc5", "coverage_1sigma_lambda", "rmse_lambda",
                "r2_lambda", "grid_floor_mae_lambda"):
        assert key in metrics
    assert metrics["n"] == 6 and len(rows) == 6
    assert 0.0 <= metrics["coverage_1sigma_lambda"] <= 1.0
    hits = sum(r["tc_K_true"] > 5 for r in rows)
    assert metrics["n_hits"] == hits
    if hits == 0:
        assert metrics["average_precision_tc5"] is None


def test_average_precision():
    assert average_precision([False, False], [1.0, 2.0]) is None
    assert average_precision([True, False], [2.0, 1.0]) == 1.0
    assert average_precision([False, True], [2.0, 1.0]) == 0.5


def test_predict_files_reads_the_files_and_names_the_model(ensemble, records, tmp_path):
    """`bete predict`'s work without the CLI: ids are file names, values those of
    predict_structures, the "model:" line goes to `say`, a missing file is a ValueError."""
    from workflows.ml.predict import model_label, predict_files

    pb = next(r for r in records if r.formula == "Pb")
    path = tmp_path / "pb.cif"
    pb.structure.to(filename=str(path))
    said = []
    (p,) = predict_files([str(path)], ensemble, model="runs/x", say=said.append)
    assert p.id == "pb.cif" and said == [f"model: {model_label('runs/x', ensemble)}"]
    assert said[0].startswith("model: runs/x (cso, 3 members, trained on 5 structures)")
    (q,) = predict_structures([pb.structure], ensemble)
    assert p.mean["tc_K"] == pytest.approx(q.mean["tc_K"], rel=1e-5)
    with pytest.raises(ValueError, match="missing.cif does not exist"):
        predict_files([str(path), str(tmp_path / "missing.cif")], ensemble)

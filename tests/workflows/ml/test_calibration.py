"""σ calibration: a scale fitted on the out-of-bag spread, kept in the manifest, used."""

import json

import numpy as np
import pytest

from betenet_model.training import TrainConfig
from stores.datasets import load_fast_v1
from workflows.ml.evaluate import (
    CALIBRATION_COVERAGE,
    evaluate_records,
    fit_sigma_scale,
    out_of_bag_metrics,
    out_of_bag_predictions,
)
from workflows.ml.predict import load_ensemble, predict_structures, sigma_scale
from workflows.ml.train import train_from_records

TINY = {"mul": 4, "embed_dim": 8, "radial_neurons": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_rows(n=400, true_scale=2.5, seed=0):
    """Errors drawn with a standard deviation ``true_scale`` × the reported spread."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.1, 1.0, n)
    err = rng.normal(0.0, true_scale * spread)
    return [{"id": str(i), "has_spectrum": True, "n_members": 4,
             "lambda": {"true": 1.0, "pred": 1.0 + e, "spread": s}}
            for i, (e, s) in enumerate(zip(err, spread, strict=True))]


def test_fitted_scale_puts_68_percent_inside_one_sigma():
    rows = synthetic_rows()
    fit = fit_sigma_scale(rows, ["lambda"])
    scale = fit["sigma_scale"]["lambda"]
    assert scale == pytest.approx(2.5, rel=0.15)           # a normal 1σ at the true width
    inside = np.mean([abs(r["lambda"]["pred"] - 1.0) <= scale * r["lambda"]["spread"]
                      for r in rows])
    assert inside == pytest.approx(CALIBRATION_COVERAGE, abs=0.01)
    assert fit["raw_coverage"]["lambda"] < 0.4               # the raw spread was too narrow
    # fresh rows from the same law: the scale carries over
    fresh = synthetic_rows(seed=1)
    inside = np.mean([abs(r["lambda"]["pred"] - 1.0) <= scale * r["lambda"]["spread"]
                      for r in fresh])
    assert 0.6 < inside < 0.76
    # rows of a single member carry no spread and are not used; too few rows fit nothing
    assert fit_sigma_scale([{**r, "lambda": {**r["lambda"], "spread": None}} for r in rows],
                           ["lambda"])["sigma_scale"] == {}
    assert fit_sigma_scale(rows[:3], ["lambda"])["sigma_scale"] == {}


def test_training_calibrates_and_every_output_uses_the_scale(tmp_path):
    records = load_fast_v1(None)[:14]
    train_from_records(records, tmp_path / "ens", members=6, seed=2,
                       training=TrainConfig(max_epochs=3, checkpoint_every=0,
                                            tc_head_weight=0.3),
                       network_options={**TINY, "tc_head": True, "head": "anchored"})
    manifest = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    cal = manifest["calibration"]
    assert set(cal["sigma_scale"]) >= {"lambda", "tc_K", "tc_head_K"}
    assert cal["n_oob_rows"] >= 10
    assert cal["coverage"] == pytest.approx(CALIBRATION_COVERAGE)
    loaded = load_ensemble(tmp_path / "ens")
    s_lam = sigma_scale(loaded, "lambda")
    assert s_lam == pytest.approx(cal["sigma_scale"]["lambda"]) and s_lam > 0
    # out of bag, the calibrated 1σ holds the fitted share (up to ties)
    oob = out_of_bag_metrics(loaded, records)
    assert oob["oob_coverage_1sigma_lambda"] == pytest.approx(CALIBRATION_COVERAGE, abs=0.12)
    assert oob["oob_coverage_1sigma_tc_K"] == pytest.approx(CALIBRATION_COVERAGE, abs=0.12)
    # predict reports member spread × scale, evaluate says so and counts coverage with it
    pred = predict_structures([records[0].structure], loaded)[0]
    spread = pred.members["lambda"].std(ddof=1)
    assert pred.std["lambda"] == pytest.approx(s_lam * spread)
    assert pred.row()["sigma_calibrated"] is True
    metrics, rows = evaluate_records(loaded, records[:3])
    assert metrics["sigma_calibrated"] is True
    assert rows[0]["lambda_std"] == pytest.approx(
        s_lam * predict_structures([records[0].structure], loaded)[0].members["lambda"]
        .std(ddof=1), rel=1e-6)
    # out-of-bag rows come from the members that left them out
    infos = loaded.member_info
    for row in out_of_bag_predictions(loaded, records):
        assert row["n_members"] == sum(row["id"] in m["out_of_bag_ids"] for m in infos)


def test_a_manifest_without_calibration_keeps_the_raw_spread(tmp_path):
    records = load_fast_v1(None)[:6]
    train_from_records(records, tmp_path / "raw", members=2, seed=0, calibrate_sigma=False,
                       training=TrainConfig(max_epochs=2, checkpoint_every=0),
                       network_options=TINY)
    ens = load_ensemble(tmp_path / "raw")
    assert "calibration" not in ens.manifest and sigma_scale(ens, "tc_K") == 1.0
    pred = predict_structures([records[1].structure], ens)[0]
    assert pred.std["tc_K"] == pytest.approx(pred.members["tc_K"].std(ddof=1))
    assert pred.row()["sigma_calibrated"] is False


def test_the_first_default_ensemble_still_loads_and_predicts():
    """fast-v1-jarvis-cso (no grid, feature scaling or calibration in its manifest)."""
    from pymatgen.core import Lattice, Structure

    from betenet_model.pretrained import pretrained_dir
    from betenet_model.targets import GRID_MEV

    ens = load_ensemble(pretrained_dir("fast-v1-jarvis-cso"))
    assert "grid_meV" not in ens.manifest and "calibration" not in ens.manifest
    np.testing.assert_allclose(ens.grid_meV, GRID_MEV)
    assert not ens.has_tc_head and ens.foundation_potential is None
    nb = Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    pred = predict_structures([nb], ens)[0]
    assert pred.a2f_mean.shape == (51,) and pred.row()["sigma_calibrated"] is False
    assert pred.std["tc_K"] == pytest.approx(pred.members["tc_K"].std(ddof=1))
    assert 0 < pred.mean["lambda"] < 3

"""Element descriptors: the shipped table, chemistry in the inputs, the mode end to end."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from betenet_model import (
    BeteNet,
    NetworkConfig,
    build_graph,
    collate,
    descriptor_names,
    element_descriptors,
    input_dim,
    make_sample,
    node_inputs,
)
from betenet_model.elements import DESCRIPTOR_TABLE
from betenet_model.ensemble import Ensemble, EnsembleConfig, train_ensemble
from betenet_model.training import TrainConfig

from .test_ensemble import TINY, toy_samples

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_element_descriptors", ROOT / "scripts" / "make_element_descriptors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_table_is_what_pymatgen_gives():
    shipped = json.loads(DESCRIPTOR_TABLE.read_text())
    fresh = _generator().build_table()
    assert shipped["columns"] == fresh["columns"] == list(descriptor_names())
    np.testing.assert_allclose(
        np.array(shipped["values"], dtype=float), np.array(fresh["values"], dtype=float),
        rtol=1e-12, equal_nan=True)


def test_descriptor_values_of_niobium():
    names = descriptor_names()
    raw = json.loads(DESCRIPTOR_TABLE.read_text())["values"][40]        # Z = 41
    row = dict(zip(names, raw, strict=True))
    assert row["group"] == 5 and row["row"] == 5 and row["block_d"] == 1
    assert row["valence_d"] == 4 and row["valence_s"] == 1
    assert row["pauling_electronegativity"] == 1.6
    scaled = element_descriptors(np.arange(1, 119))
    assert scaled.shape == (118, len(names)) and np.isfinite(scaled).all()
    # standardised over the elements that have a value
    assert np.abs(scaled.mean(axis=0)).max() < 0.5 and scaled.std(axis=0).max() < 1.0 + 1e-9


@pytest.mark.parametrize("similar, dissimilar", [
    ((41, 73), (41, 8)),      # Nb–Ta (group 5) vs Nb–O
    ((19, 37), (19, 35)),     # K–Rb (alkali) vs K–Br
    ((13, 31), (13, 55)),     # Al–Ga (group 13) vs Al–Cs
    ((82, 50), (82, 9)),      # Pb–Sn (group 14) vs Pb–F
])
def test_similar_elements_get_closer_inputs(similar, dissimilar):
    def distance(pair, mode):
        f, a = node_inputs(list(pair), variant="CSO", node_features=mode)
        return float(np.linalg.norm(f[0] - f[1])), float(np.linalg.norm(a[0] - a[1]))

    for near, far in zip(distance(similar, "descriptors"), distance(dissimilar, "descriptors"),
                         strict=True):
        assert near < far
    # the paper's one-hot attributes put every pair of elements at the same distance
    assert distance(similar, "onehot_mass")[1] == distance(dissimilar, "onehot_mass")[1]


def test_descriptor_mode_widths_and_dos_block():
    d = len(descriptor_names())
    assert input_dim("CSO", "descriptors") == d and input_dim("FPD", "descriptors") == d + 51
    dos = np.full((2, 51), 0.1)
    f, a = node_inputs([41, 6], dos, "FPD", "descriptors")
    assert f.shape == a.shape == (2, d + 51)
    np.testing.assert_array_equal(f[:, :d], a[:, :d])
    assert (f[:, d:] == 0.1).all() and (a[:, d:] == 0).all()
    with pytest.raises(ValueError, match="node-feature mode"):
        node_inputs([41], None, "CSO", "one-hot")


def test_network_runs_on_descriptor_inputs_and_rejects_a_width_mismatch():
    cfg = NetworkConfig.for_variant("CSO", "descriptors", **TINY)
    net = BeteNet(cfg).double()
    g = build_graph(np.eye(3) * 3.3, [[0, 0, 0], [1.65, 1.65, 1.65]], [41, 6])
    out = net(collate([make_sample(g, config=cfg, node_features="descriptors")]))
    assert out.shape == (1, 51) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="input_dim"):
        make_sample(g, config=cfg)          # one-hot inputs for a descriptor network


def test_checkpoint_records_the_mode_and_loads_back(tmp_path):
    samples = toy_samples()
    cfg = EnsembleConfig(network=NetworkConfig.for_variant("CSO", "descriptors", **TINY),
                         training=TrainConfig(max_epochs=4, patience=2, peak_window=2,
                                              patience_stage3=2, checkpoint_every=0),
                         members=1, seed=3, node_features="descriptors")
    ens = train_ensemble(samples, cfg, tmp_path / "ens")
    manifest = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert manifest["node_features"] == manifest["config"]["node_features"] == "descriptors"
    assert len(manifest["descriptor_table_sha256"]) == 64
    loaded = Ensemble.load(tmp_path / "ens")
    assert loaded.config.node_features == "descriptors"
    np.testing.assert_allclose(loaded.predict_spectra(samples), ens.predict_spectra(samples),
                               rtol=1e-6, atol=1e-9)
    # an element no training row contained (Nb) still gets a prediction through its descriptors
    unseen = type(samples[0])("nb", np.eye(3) * 3.3, [[0, 0, 0]], [41])
    assert np.isfinite(loaded.predict_spectra([unseen])).all()
    # a manifest written with another descriptor table is refused on load
    manifest["descriptor_table_sha256"] = "0" * 64
    (tmp_path / "ens" / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="descriptor table"):
        Ensemble.load(tmp_path / "ens")


def test_old_manifests_without_the_key_are_one_hot():
    cfg = EnsembleConfig(network=NetworkConfig.for_variant("CSO", **TINY))
    data = cfg.as_dict()
    data.pop("node_features")
    assert EnsembleConfig.from_dict(data).node_features == "onehot_mass"
    with pytest.raises(ValueError, match="input_dim"):
        EnsembleConfig(network=NetworkConfig.for_variant("CSO", **TINY),
                       node_features="descriptors")

"""The ``dos`` head (α²F = α²(ω)·F(ω)), the direct Tc head and foundation node features."""

import json

import numpy as np
import pytest
import torch

from betenet_model import (
    FOUNDATION_FEATURES,
    BeteNet,
    NetworkConfig,
    build_graph,
    collate,
    make_sample,
    model_grid,
    node_inputs,
)
from betenet_model.dataset import CrystalSample, dataset_hash
from betenet_model.ensemble import Ensemble, EnsembleConfig, feature_scaling, train_ensemble
from betenet_model.heads import ANCHOR_LOG_BOUND, coupling_basis
from betenet_model.tc import spectral_moments
from betenet_model.training import TrainConfig

TINY = dict(mul=4, embed_dim=8, radial_neurons=8)
BINS = 126


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def einstein_dos(centre_meV: float, bins: int = BINS) -> np.ndarray:
    """A per-atom DOS (∫ = 3) peaked at ``centre_meV`` on the model grid."""
    g = np.exp(-0.5 * ((model_grid(bins) - centre_meV) / 4.0) ** 2)
    return 3.0 * g / (g.sum() * 2.0)


def toy_samples(n=6, features=True):
    """Crystals with a phonon DOS at 15 … 165 meV, α²F = coupling × DOS, fake atom features."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        a = 3.0 + 0.15 * i
        numbers = [[13, 29, 41, 1, 6, 47][i % 6], 13]
        dos = einstein_dos(15.0 + 30.0 * i)
        target = (0.5 + 0.3 * (i % 3)) * dos
        out.append(CrystalSample(
            f"s{i}", np.eye(3) * a, [[0, 0, 0], [a / 2, a / 2, a / 2]], numbers, target=target,
            atom_features=rng.normal(size=(2, 128)) * 5 + 2 if features else None,
            phonon_dos=dos))
    return out


def dos_config(node_features="sevennet_l3i5", tc_head=True, members=3):
    net = NetworkConfig.for_variant("cso", node_features, head="dos", out_dim=BINS,
                                    tc_head=tc_head, **TINY)
    return EnsembleConfig(network=net, node_features=node_features, members=members, seed=3,
                          training=TrainConfig(max_epochs=15, checkpoint_every=0,
                                               tc_head_weight=0.5, moment_loss_weight=0.01))


def test_grid_covers_light_element_phonons():
    grid = model_grid(BINS)
    np.testing.assert_allclose(grid[:51], model_grid(51))          # the paper's grid first
    assert grid[-1] == pytest.approx(250.25) and np.allclose(np.diff(grid), 2.0)
    with pytest.raises(ValueError, match="at least 2"):
        model_grid(1)


def test_coupling_basis_is_smooth_and_finer_at_low_frequency():
    grid = torch.as_tensor(model_grid(BINS))
    basis = coupling_basis(grid, 10)
    assert basis.shape == (10, BINS) and bool((basis > 0).all())
    peaks = grid[basis.argmax(dim=1)].numpy()
    assert np.all(np.diff(peaks) > 0) and peaks[1] < 10 and np.diff(peaks)[-1] > 40
    assert float(basis.sum(dim=0).min()) > 0.5      # every frequency is reached


def test_dos_head_is_positive_bounded_and_follows_the_dos():
    torch.manual_seed(0)
    cfg = NetworkConfig(head="dos", out_dim=BINS, **TINY)
    net = BeteNet(cfg).double()
    net.set_anchor(torch.full((BINS,), 2.0))
    # big output weights: the bound has to hold, not the initialisation
    with torch.no_grad():
        for p in net.layers[-1].parameters():
            p.mul_(50.0)
    dos = np.stack([einstein_dos(20.0), einstein_dos(180.0)])
    cells = [(np.eye(3) * 3.0, [[0, 0, 0]], [13]), (np.eye(3) * 2.5, [[0, 0, 0]], [1])]
    samples = [make_sample(build_graph(*c), config=cfg, phonon_dos=d)
               for c, d in zip(cells, dos, strict=True)]
    with torch.no_grad():
        a2f = net(collate(samples)).numpy()
    assert a2f.shape == (2, BINS) and (a2f >= 0).all()
    ratio = a2f[dos > 1e-12] / dos[dos > 1e-12]
    bound = np.exp(ANCHOR_LOG_BOUND)
    assert (ratio >= 2.0 / bound - 1e-9).all() and (ratio <= 2.0 * bound + 1e-9).all()
    assert (a2f[dos == 0] == 0).all()                       # no weight where there are no modes
    # the hydride-like cell has its weight where its DOS is (above 150 meV), not at 20 meV
    grid = model_grid(BINS)
    assert grid[a2f[1].argmax()] > 150 and grid[a2f[0].argmax()] < 30
    with pytest.raises(ValueError, match="phonon DOS"):
        net(collate([make_sample(build_graph(*cells[0]), config=cfg)]))


def test_tc_head_and_new_options_are_left_out_at_their_defaults():
    assert NetworkConfig().to_dict() == NetworkConfig.from_dict(NetworkConfig().to_dict()
                                                                ).to_dict()
    assert {"head", "tc_head", "coupling_basis"}.isdisjoint(NetworkConfig().to_dict())
    d = NetworkConfig(head="dos", tc_head=True, coupling_basis=6).to_dict()
    assert d["tc_head"] is True and d["coupling_basis"] == 6
    assert "tc_head_weight" not in TrainConfig().as_dict()
    assert TrainConfig.from_dict(TrainConfig(tc_head_weight=0.3).as_dict()).tc_head_weight == 0.3
    with pytest.raises(ValueError, match="tc_head_weight"):
        TrainConfig(tc_head_weight=-1)
    net = BeteNet(NetworkConfig(tc_head=True, **TINY)).double()
    spectra, log_tc = net.predict(collate([make_sample(build_graph(np.eye(3) * 3, [[0, 0, 0]],
                                                                   [13]), config=net.config)]))
    assert spectra.shape == (1, 51) and log_tc.shape == (1,)
    with pytest.raises(ValueError, match="tc_head"):
        BeteNet(NetworkConfig(**TINY)).set_tc_anchor(1.0)


def test_foundation_node_features_append_the_atom_features():
    width = FOUNDATION_FEATURES["sevennet_l3i5"]
    extra = np.arange(2 * width, dtype=float).reshape(2, width)
    feats, attrs = node_inputs([41, 13], node_features="sevennet-l3i5", atom_features=extra)
    assert feats.shape == attrs.shape == (2, 21 + width)
    np.testing.assert_array_equal(feats[:, 21:], extra)
    assert (attrs[:, 21:] == 0).all() and np.array_equal(feats[:, :21], attrs[:, :21])
    with pytest.raises(ValueError, match="need the per-atom features"):
        node_inputs([41, 13], node_features="sevennet_l3i5")
    with pytest.raises(ValueError, match="take no atom_features"):
        node_inputs([41, 13], node_features="descriptors", atom_features=extra)


def test_dataset_hash_sees_the_mlip_inputs_and_keeps_old_hashes():
    s = toy_samples(1)[0]
    bare = CrystalSample(s.id, s.lattice, s.positions, s.atomic_numbers, target=s.target)
    assert dataset_hash([bare]) != dataset_hash([s])
    again = CrystalSample(s.id, s.lattice, s.positions, s.atomic_numbers, target=s.target)
    assert dataset_hash([bare]) == dataset_hash([again])


def test_dos_and_tc_head_ensemble_trains_saves_and_loads(tmp_path):
    samples = toy_samples(6)
    tc_only = [CrystalSample("tc0", np.eye(3) * 3.3, [[0, 0, 0]], [41], tc_K=9.0,
                             atom_features=np.ones((1, 128)), phonon_dos=einstein_dos(20.0))]
    ens = train_ensemble(samples + tc_only, dos_config(), tmp_path / "dos")
    manifest = json.loads((tmp_path / "dos" / "ensemble.json").read_text())
    assert manifest["grid_meV"] == model_grid(BINS).tolist()
    scaling = feature_scaling(samples + tc_only)
    np.testing.assert_allclose(manifest["feature_scaling"]["mean"], scaling["mean"])
    spectra, tc = ens.predict(samples)
    assert spectra.shape == (3, 6, BINS) and tc.shape == (3, 6) and (tc >= 0).all()
    grid = torch.as_tensor(model_grid(BINS))
    for i, model in enumerate(ens.models):
        info = json.loads((tmp_path / "dos" / f"member_{i:03d}.json").read_text())
        rows = [s for s in samples if s.id in info["bootstrap_ids"]]
        w = torch.tensor([info["bootstrap_ids"][s.id] for s in rows], dtype=torch.float64)
        lam_true = spectral_moments(grid, torch.as_tensor(np.stack([s.target for s in rows])))[0]
        lam_dos = spectral_moments(grid, torch.as_tensor(np.stack([s.phonon_dos
                                                                   for s in rows])))[0]
        expected = float((w * lam_true).sum() / (w * lam_dos).sum())
        np.testing.assert_allclose(model.anchor.numpy(), expected, rtol=1e-5)
    loaded = Ensemble.load(tmp_path / "dos")
    assert loaded.needs_phonon_dos and loaded.has_tc_head
    assert loaded.foundation_potential == "sevennet-l3i5"
    np.testing.assert_allclose(loaded.grid_meV, model_grid(BINS))
    again_spectra, again_tc = loaded.predict(samples)
    np.testing.assert_allclose(again_spectra, spectra, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(again_tc, tc, rtol=1e-5, atol=1e-7)
    # the scaling is the manifest's: other atom features change the prediction
    shifted = [CrystalSample(s.id, s.lattice, s.positions, s.atomic_numbers,
                             atom_features=s.atom_features + 3.0, phonon_dos=s.phonon_dos)
               for s in samples]
    assert not np.allclose(loaded.predict(shifted)[1], tc)
    missing = [CrystalSample("x", np.eye(3) * 3, [[0, 0, 0]], [13], phonon_dos=einstein_dos(9))]
    with pytest.raises(ValueError, match="atom features"):
        loaded.predict(missing)


def test_an_old_manifest_keeps_the_paper_grid(tmp_path):
    cfg = EnsembleConfig(network=NetworkConfig.for_variant("cso", **TINY), members=1,
                         training=TrainConfig(max_epochs=2, checkpoint_every=0))
    samples = [CrystalSample(s.id, s.lattice, s.positions, s.atomic_numbers,
                             target=s.target[:51]) for s in toy_samples(3, features=False)]
    train_ensemble(samples, cfg, tmp_path / "old")
    path = tmp_path / "old" / "ensemble.json"
    manifest = json.loads(path.read_text())
    del manifest["grid_meV"]                        # written before grids were recorded
    path.write_text(json.dumps(manifest))
    ens = Ensemble.load(tmp_path / "old")
    np.testing.assert_allclose(ens.grid_meV, model_grid(51))
    assert not ens.has_tc_head and ens.predict(samples)[1] is None


def test_tc_head_is_bounded():
    from betenet_model.heads import TC_HEAD_MAX_K

    torch.manual_seed(0)
    net = BeteNet(NetworkConfig(tc_head=True, **TINY)).double()
    with torch.no_grad():
        for p in net.layers[-1].parameters():
            p.mul_(1e4)
    sample = make_sample(build_graph(np.eye(3) * 2.4, [[0, 0, 0]], [5]), config=net.config)
    with torch.no_grad():
        _, log_tc = net.predict(collate([sample]))
    assert abs(float(log_tc)) <= np.log1p(TC_HEAD_MAX_K) + 1e-9

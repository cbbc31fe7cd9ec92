import json

import numpy as np
import pytest
import torch

from betenet_model.dataset import CrystalSample, dataset_hash
from betenet_model.ensemble import (
    Ensemble,
    EnsembleConfig,
    TrainingInterrupted,
    bootstrap_counts,
    member_seeds,
    train_ensemble,
    train_member,
)
from betenet_model.network_config import NetworkConfig

from ._model_helpers import TINY, tiny_config, toy_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bootstrap_is_seeded_and_has_out_of_bag_rows():
    r1, s1 = member_seeds(7, 3)
    r2, s2 = member_seeds(7, 3)
    assert s1 == s2 and np.array_equal(bootstrap_counts(10, r1), bootstrap_counts(10, r2))
    assert member_seeds(7, 4)[1] != s1
    for i in range(20):
        counts = bootstrap_counts(4, member_seeds(0, i)[0])
        assert counts.sum() == 4 and (counts == 0).any()


def test_train_save_load_round_trip(tmp_path):
    samples = toy_samples()
    ens = train_ensemble(samples, tiny_config(), tmp_path / "ens",
                         metadata={"command": "pytest"})
    files = sorted(p.name for p in (tmp_path / "ens").iterdir())
    assert files == ["ensemble.json", "member_000.json", "member_000.pt",
                     "member_001.json", "member_001.pt"]
    manifest = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert manifest["training_set"]["hash"] == dataset_hash(samples)
    assert manifest["training_set"]["elements_Z"] == [13, 29, 47, 79, 82]
    assert set(manifest["versions"]) >= {"torch", "e3nn"}
    assert len(manifest["baseline_spectrum"]) == 51
    assert manifest["metrics"]["members_finished"] == 2
    member = json.loads((tmp_path / "ens" / "member_000.json").read_text())
    assert member["n_out_of_bag"] >= 1 and member["out_of_bag_ids"]
    assert set(member["bootstrap_ids"]).isdisjoint(member["out_of_bag_ids"])
    # weights are plain state_dicts
    state = torch.load(tmp_path / "ens" / "member_000.pt", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())

    pred = ens.predict_spectra(samples)
    assert pred.shape == (2, 5, 51) and (pred >= 0).all()
    loaded = Ensemble.load(tmp_path / "ens")
    np.testing.assert_allclose(loaded.predict_spectra(samples), pred, rtol=1e-6, atol=1e-9)
    # save() writes a loadable copy
    loaded.save(tmp_path / "copy")
    again = Ensemble.load(tmp_path / "copy")
    np.testing.assert_allclose(again.predict_spectra(samples[:2]), pred[:, :2], rtol=1e-6,
                               atol=1e-9)
    assert again.elements_seen == [13, 29, 47, 79, 82]


def test_member_is_independent_and_resumable(tmp_path):
    samples = toy_samples()
    cfg = tiny_config(members=2, max_epochs=10)
    # member 1 alone, as a cluster job would run it
    info = train_member(1, samples, cfg, tmp_path / "a")
    assert info["member_index"] == 1 and (tmp_path / "a" / "member_001.pt").is_file()
    # same member in a full run gives the same weights
    train_ensemble(samples, cfg, tmp_path / "b")
    wa = torch.load(tmp_path / "a" / "member_001.pt", weights_only=True)
    wb = torch.load(tmp_path / "b" / "member_001.pt", weights_only=True)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=0)
    # a finished member is not retrained
    again = train_member(1, samples, cfg, tmp_path / "a")
    assert again["finished"] == info["finished"]


def test_other_data_in_the_same_folder_is_refused(tmp_path):
    samples = toy_samples()
    train_ensemble(samples, tiny_config(members=1, max_epochs=3), tmp_path)
    with pytest.raises(ValueError, match="other data"):
        train_ensemble(samples[:4], tiny_config(members=1, max_epochs=3), tmp_path)


def test_variant_must_match_network_input():
    with pytest.raises(ValueError, match="input_dim"):
        EnsembleConfig(network=NetworkConfig.for_variant("CSO", **TINY), variant="fpd")


def test_load_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="ensemble.json"):
        Ensemble.load(tmp_path)


def test_killed_member_resumes_to_the_same_weights(tmp_path):
    samples = toy_samples()
    cfg = tiny_config(members=1, max_epochs=14)
    train_member(0, samples, cfg, tmp_path / "ref")

    def kill(member, epoch, *_):
        if epoch == 12:                     # last checkpoint at epoch 10
            raise TrainingInterrupted("simulated kill")

    with pytest.raises(TrainingInterrupted):
        train_member(0, samples, cfg, tmp_path / "run", callback=kill)
    assert not (tmp_path / "run" / "member_000.pt").exists()
    info = train_member(0, samples, cfg, tmp_path / "run")
    assert info["result"]["resumed_from"] == 10
    ref = torch.load(tmp_path / "ref" / "member_000.pt", weights_only=True)
    got = torch.load(tmp_path / "run" / "member_000.pt", weights_only=True)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-6, atol=0)


def test_mixed_supervision_trains_on_tc_only_rows(tmp_path):
    samples = toy_samples(4)
    tc_only = [CrystalSample(f"tc{i}", np.eye(3) * 3.3, [[0, 0, 0]], [41 + i], tc_K=5.0 * i)
               for i in range(3)]
    cfg = tiny_config(members=1, max_epochs=6)
    ens = train_ensemble(samples + tc_only, cfg, tmp_path / "mixed")
    manifest = json.loads((tmp_path / "mixed" / "ensemble.json").read_text())
    assert manifest["training_set"]["n_spectrum"] == 4
    assert manifest["training_set"]["n_tc_only"] == 3
    # the baseline is the mean of the spectrum rows only
    np.testing.assert_allclose(manifest["baseline_spectrum"],
                               np.mean([s.target for s in samples], axis=0))
    assert np.isfinite(ens.predict_spectra(tc_only)).all()
    # Tc-only rows change the training set (hash) and the weights
    plain = train_ensemble(samples, cfg, tmp_path / "plain")
    assert plain.training_set_hash != ens.training_set_hash
    assert not np.allclose(plain.predict_spectra(samples), ens.predict_spectra(samples))
    with pytest.raises(ValueError, match="no training row has an α²F spectrum"):
        train_ensemble(tc_only, cfg, tmp_path / "none")


def anchored_config(members=2, max_epochs=8):
    cfg = tiny_config(members=members, max_epochs=max_epochs)
    return EnsembleConfig(network=NetworkConfig.for_variant("CSO", head="anchored", **TINY),
                          training=cfg.training, members=members, seed=cfg.seed)


def test_anchored_head_starts_from_the_in_bag_mean_spectrum(tmp_path):
    samples = toy_samples(6)
    tc_only = [CrystalSample("tc0", np.eye(3) * 3.3, [[0, 0, 0]], [41], tc_K=4.0)]
    ens = train_ensemble(samples + tc_only, anchored_config(), tmp_path / "anch")
    targets = np.array([s.target for s in samples])
    for i, model in enumerate(ens.models):
        member = json.loads((tmp_path / "anch" / f"member_{i:03d}.json").read_text())
        counts = np.array([member["bootstrap_ids"].get(s.id, 0) for s in samples], dtype=float)
        expected = counts @ targets / counts.sum()       # the Tc-only row carries no spectrum
        np.testing.assert_allclose(model.anchor.numpy(), expected, rtol=1e-5)
    # each member's output is its anchor times a factor within [1/8, 8]
    pred = ens.predict_spectra(samples)
    for i, model in enumerate(ens.models):
        support = model.anchor.numpy()
        ratio = pred[i][:, support > 0] / support[support > 0]
        assert (ratio >= 1 / 8 - 1e-6).all() and (ratio <= 8 + 1e-6).all()
        assert (pred[i][:, support == 0] == 0).all()
        assert not np.allclose(ratio, 1.0)                 # trained: not the anchor itself
    # the anchor is saved with the weights; the config keeps the head
    loaded = Ensemble.load(tmp_path / "anch")
    assert loaded.models[0].config.head == "anchored"
    np.testing.assert_allclose(loaded.predict_spectra(samples), pred, rtol=1e-6, atol=1e-9)


def test_head_option_is_validated_and_omitted_at_its_default():
    assert "head" not in NetworkConfig().to_dict()       # older manifests keep their digests
    assert NetworkConfig(head="anchored").to_dict()["head"] == "anchored"
    assert NetworkConfig.from_dict(NetworkConfig(head="anchored").to_dict()).head == "anchored"
    with pytest.raises(ValueError, match="head must be one of"):
        NetworkConfig(head="softmax")
    from betenet_model.network import BeteNet

    with pytest.raises(ValueError, match="needs head 'anchored'"):
        BeteNet(NetworkConfig(**TINY)).set_anchor(torch.zeros(51))
    with pytest.raises(ValueError, match="finite"):
        BeteNet(NetworkConfig(head="anchored", **TINY)).set_anchor(torch.full((51,), np.nan))

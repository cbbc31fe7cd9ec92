"""Out-of-bag scores against the in-bag mean spectrum (the anchored head's starting point)."""

import numpy as np
import pytest
import torch

from betenet_model.training import TrainConfig
from stores.datasets import load_fast_v1
from workflows.ml.evaluate import out_of_bag_metrics
from workflows.ml.train import train_from_records

TINY = {"mul": 4, "embed_dim": 8, "radial_neurons": 8}


@pytest.fixture(scope="module")
def untrained_anchored(tmp_path_factory):
    """Anchored members with a zeroed output convolution: each predicts exactly its anchor."""
    torch.set_num_threads(1)
    records = [r for r in load_fast_v1() if r.has_spectrum][:8]
    ens = train_from_records(records, tmp_path_factory.mktemp("anch") / "ens", members=4,
                             seed=3, node_features="descriptors",
                             training=TrainConfig(max_epochs=1, lr=1e-12, checkpoint_every=0),
                             network_options={**TINY, "head": "anchored"})
    with torch.no_grad():
        for model in ens.models:
            for p in model.layers[-1].parameters():
                p.zero_()
    return ens, records


def test_an_anchored_member_at_its_anchor_scores_the_in_bag_baseline(untrained_anchored):
    ens, records = untrained_anchored
    m = out_of_bag_metrics(ens, records)
    for key in ("lambda", "omega_log_K", "omega_2_K", "tc_K"):
        assert m[f"oob_mae_{key}"] == pytest.approx(m[f"oob_inbag_baseline_mae_{key}"],
                                                    rel=1e-5, abs=1e-7)
    # the all-rows mean is another spectrum: it saw the scored rows
    assert m["oob_baseline_mae_lambda"] != pytest.approx(m["oob_inbag_baseline_mae_lambda"],
                                                         rel=1e-4)


def test_in_bag_baseline_needs_every_training_spectrum(untrained_anchored):
    ens, records = untrained_anchored
    m = out_of_bag_metrics(ens, records[:-1])
    assert m["oob_inbag_baseline_mae_lambda"] is None
    assert np.isfinite(m["oob_baseline_mae_lambda"])

"""`train_from_data` / `evaluate_model`: the one workflow call of bete train / evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from betenet_model.training import TrainConfig
from stores.datasets import load_fast_v1, split_records
from workflows.ml.evaluate import evaluate_model
from workflows.ml.train import train_from_data
from workflows.ml.training_data import DataOptions

TINY = {"mul": 4, "embed_dim": 8, "radial_neurons": 8}
SPLIT = {"test_fraction": 0.3, "split_seed": 1}


def _sides():
    train, test = split_records(load_fast_v1(), test_fraction=0.3, seed=1)
    return {r.id for r in train}, {r.id for r in test}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny members on the train side of SPLIT of the packaged fast-v1 rows."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    said: list[str] = []
    out = tmp_path_factory.mktemp("from-data") / "ens"
    ens = train_from_data(DataOptions(source="fast-v1", split="train", **SPLIT), out,
                          members=2, seed=3, network_options=TINY, say=said.append,
                          training=TrainConfig(max_epochs=2, checkpoint_every=0))
    torch.set_num_threads(threads)
    return ens, out, said


def test_train_from_data_trains_on_the_chosen_side(trained):
    ens, out, said = trained
    train, _ = _sides()
    assert set(ens.manifest["training_set"]["ids"]) == train
    assert json.loads((out / "ensemble.json").read_text())["members"] == 2
    assert any(line.startswith(f"training 2 cso member(s) on {len(train)} structures (")
               and line.endswith(f"-> {out}") for line in said), said


def test_training_rows_are_refused_without_the_cli(trained):
    ens, _, _ = trained
    with pytest.raises(ValueError, match=r"are in the model's training set, so their scores are "
                       r"in-sample; use --held-out .* or --allow-overlap to score them anyway"):
        evaluate_model(ens, DataOptions(source="fast-v1"))
    said: list[str] = []
    found = evaluate_model(ens, DataOptions(source="fast-v1"), allow_overlap=True,
                           say=said.append)
    train, test = _sides()
    assert found.rows_in_training_set == len(train)
    assert found.metrics["n"] == len(found.rows) == len(train) + len(test)
    assert any(line.startswith(f"warning: {len(train)} of the ") for line in said)
    held = evaluate_model(ens, DataOptions(source="fast-v1"), held_out=True)
    assert held.rows_in_training_set == 0 and {r["id"] for r in held.rows} == test
    with pytest.raises(ValueError, match="every row of the data was in the training set"):
        evaluate_model(ens, DataOptions(source="fast-v1", split="train", **SPLIT),
                       held_out=True)


def test_evaluate_model_gives_the_metrics_bete_evaluate_prints(trained, tmp_path, capsys):
    from launchers.cli import main

    _, out, _ = trained
    png = tmp_path / "parity.png"
    found = evaluate_model(str(out), DataOptions(source="fast-v1", split="train", **SPLIT),
                           out_of_bag=True, parity=png)
    assert png.is_file() and png.stat().st_size > 1000
    assert main(["evaluate", "--model", str(out), "--data", "fast-v1", "--split", "train",
                 "--test-fraction", "0.3", "--split-seed", "1", "--out-of-bag",
                 "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    train, _ = _sides()
    assert printed.pop("rows_in_training_set") == found.rows_in_training_set == len(train)
    assert printed.pop("model") == str(out)
    assert (printed.pop("data"), printed.pop("split")) == ("fast-v1", "train")
    assert printed == json.loads(json.dumps(found.metrics))
    assert printed["n"] == len(train) and printed["n_oob"] >= 1

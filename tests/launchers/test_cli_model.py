import json

import pytest
import torch
from pymatgen.core import Lattice, Structure

from launchers.cli import main
from launchers.cli.model import DataOptions, EvaluateCommand, PredictCommand, run
from stores.datasets import load_fast_v1, packaged_fast_v1_dir, split_records

TINY = ["--network", "mul=4", "--network", "embed_dim=8", "--network", "radial_neurons=8"]
SPLIT = ["--test-fraction", "0.3", "--split-seed", "1"]


def _n_test() -> int:
    """Test rows of SPLIT on the packaged dataset (which grows with campaign records)."""
    return len(split_records(load_fast_v1(), test_fraction=0.3, seed=1)[1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli") / "ens"
    rc = main(["train", "--data", str(packaged_fast_v1_dir()), "--split", "train", *SPLIT,
               "--members", "2", "--max-epochs", "5", "--out", str(out), "--seed", "3",
               "--progress-every", "2", *TINY])
    assert rc == 0
    yield out
    torch.set_num_threads(threads)


def test_train_writes_the_ensemble(model_dir):
    manifest = json.loads((model_dir / "ensemble.json").read_text())
    assert manifest["members"] == 2 and manifest["variant"] == "cso"
    assert manifest["metadata"]["command"].startswith("bete train --data ")
    assert "--split train" in manifest["metadata"]["command"]
    assert manifest["config"]["network"]["mul"] == 4
    assert (model_dir / "member_001.pt").is_file()


def test_train_progress_on_stderr(tmp_path, capsys):
    """--verbose: one line per --progress-every epochs."""
    rc = main(["train", "--data", "fast-v1", "--members", "1", "--max-epochs", "2",
               "--out", str(tmp_path / "e"), "--progress-every", "1", "--verbose", *TINY])
    err = capsys.readouterr()
    assert rc == 0 and err.out == ""
    assert "member 1/1 epoch 2 stage 1" in err.err


def test_train_draws_a_bar_per_member_with_an_eta(tmp_path, capsys):
    rc = main(["train", "--data", "fast-v1", "--members", "2", "--max-epochs", "3",
               "--out", str(tmp_path / "e"), *TINY])
    captured = capsys.readouterr()
    assert rc == 0 and captured.out == ""
    for member in ("member 1/2", "member 2/2"):
        final = [s for s in captured.err.replace("\r", "\n").splitlines() if member in s]
        assert final, captured.err
        assert "3/3" in final[-1] and "epoch" in final[-1] and "<" in final[-1]  # [elapsed<ETA
    assert "member 1/2 epoch" not in captured.err


def test_train_quiet_prints_only_start_and_summary(tmp_path, capsys):
    rc = main(["train", "--data", "fast-v1", "--members", "1", "--max-epochs", "2",
               "--out", str(tmp_path / "e"), "--quiet", *TINY])
    err = capsys.readouterr().err
    # warnings about the data stay (e.g. NiH 811: a third of its α²F above the 100 meV grid)
    lines = [line for line in err.strip().splitlines() if " WARNING " not in line]
    assert rc == 0 and "member 1/1" not in err and " INFO " not in err
    assert lines[-2].startswith("training 1 cso member") and lines[-1].startswith("done in")


def test_train_budget_small_and_explicit_overrides(tmp_path, capsys):
    out = tmp_path / "e"
    rc = main(["train", "--data", "fast-v1", "--members", "1", "--budget", "small",
               "--max-epochs", "2", "--network", "mul=4", "--out", str(out), "--quiet"])
    assert rc == 0
    manifest = json.loads((out / "ensemble.json").read_text())
    training, network = manifest["config"]["training"], manifest["config"]["network"]
    assert (training["peak_window"], training["patience_stage3"]) == (100, 300)
    assert training["max_epochs"] == 2                      # explicit beats the budget
    assert (network["mul"], network["embed_dim"], network["radial_neurons"]) == (4, 32, 64)
    assert manifest["metadata"]["budget"] == "small"
    assert "--patience-stage3 300" in manifest["metadata"]["command"]


def test_member_bar_total_tightens_in_stage_3():
    from launchers.cli.train_progress import MemberBars

    bars = MemberBars(members=1, max_epochs=1000, patience_stage3=50)
    bars(0, 1, 1.0, 1.0, 1)
    assert bars._bars[0].total == 1000
    bars(0, 100, 1.0, 0.5, 3)       # best stage-3 loss at epoch 100: the run ends by 150
    bars(0, 101, 1.0, 0.6, 3)
    assert bars._bars[0].total == 150 and bars._bars[0].n == 101
    bars.close()


def test_evaluate_prints_one_json_object(model_dir, tmp_path, capsys):
    png = tmp_path / "parity.png"
    rc = main(["evaluate", "--model", str(model_dir), "--data", str(packaged_fast_v1_dir()),
               "--split", "test", *SPLIT, "--format", "json", "--parity", str(png)])
    out = capsys.readouterr().out
    assert rc == 0
    metrics = json.loads(out)
    for key in ("n", "mae_lambda", "mae_omega_log_K", "mae_omega_2_K", "mae_tc_K",
                "baseline_mae_lambda", "baseline_mae_tc_K", "average_precision_tc5",
                "random_average_precision_tc5", "coverage_1sigma_lambda", "rmse_lambda",
                "r2_lambda"):
        assert key in metrics
    assert metrics["n"] == _n_test()
    assert png.is_file() and png.stat().st_size > 1000


def test_evaluate_in_process_held_out(model_dir):
    metrics = run(EvaluateCommand(model=str(model_dir),
                                  data=DataOptions(source=str(packaged_fast_v1_dir())),
                                  held_out=True, rows=True))
    assert metrics["n"] == len(metrics["rows"]) == _n_test()


def test_evaluate_out_of_bag(model_dir):
    data = DataOptions(source=str(packaged_fast_v1_dir()), split="train", test_fraction=0.3,
                       split_seed=1)
    metrics = run(EvaluateCommand(model=str(model_dir), data=data, out_of_bag=True))
    train, _ = split_records(load_fast_v1(), test_fraction=0.3, seed=1)
    assert 1 <= metrics["n_oob"] <= metrics["n"] == len(train)
    assert metrics["oob_mae_lambda"] >= 0 and "oob_baseline_mae_tc_K" in metrics
    for key in ("lambda", "omega_log_K", "tc_K"):
        assert abs(metrics[f"oob_bias_{key}"]) <= metrics[f"oob_mae_{key}"] + 1e-12


def test_predict_table_and_json(model_dir, tmp_path, capsys):
    cif = tmp_path / "Cu.cif"
    Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]).to(filename=str(cif))
    assert main(["predict", str(cif), "--model", str(model_dir)]) == 0
    table = capsys.readouterr().out
    assert "±" in table and "Cu" in table and "not in the training set" in table
    rows = run(PredictCommand(structures=[str(cif)], model=str(model_dir), spectra=True))
    assert len(rows) == 1 and len(rows[0]["a2f_mean"]) == 51
    assert main(["predict", str(cif), "--model", str(model_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["formula"] == "Cu"


def test_user_errors(tmp_path, capsys):
    assert main(["predict", "nothing.cif", "--model", str(tmp_path)]) == 2
    assert "ensemble.json" in capsys.readouterr().err
    assert main(["train", "--data", "fast-v1", "--out", str(tmp_path / "x"),
                 "--network", "bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path / "missing"), "--model",
                 str(tmp_path)]) == 2


def test_shipped_ensemble_predicts(tmp_path, capsys):
    from betenet_model.pretrained import pretrained_dir

    if not (pretrained_dir() / "ensemble.json").is_file():
        pytest.skip("no shipped ensemble in this checkout")
    cif = tmp_path / "Pb.cif"
    Structure(Lattice.cubic(4.95), ["Pb"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(cif))
    assert main(["predict", str(cif), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["lambda"] >= 0 and row["warnings"] == ""


def test_train_into_a_store_then_predict_from_it(tmp_path, capsys):
    store = str(tmp_path / "store")
    out = tmp_path / "e"
    rc = main(["train", "--data", "fast-v1", "--members", "1", "--max-epochs", "2",
               "--out", str(out), "--store", store, *TINY])
    err = capsys.readouterr().err
    assert rc == 0 and "model id cso-" in err
    model_id = err.split("model id ")[1].split()[0]
    assert main(["model", "list", "--store", store, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model_id"] for r in rows] == [model_id] and rows[0]["stored"] == "files"

    cif = tmp_path / "Cu.cif"
    Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]).to(filename=str(cif))
    assert main(["predict", str(cif), "--model", str(out), "--format", "json"]) == 0
    from_folder = json.loads(capsys.readouterr().out)
    assert main(["predict", str(cif), "--model", f"store:{model_id}", "--store", store,
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    from_store = json.loads(captured.out)
    assert from_store[0].pop("model").startswith(f"store:{model_id} (cso, 1 members")
    assert from_folder[0].pop("model").startswith(f"{out} (cso, 1 members")
    assert from_store == from_folder
    assert f"model {model_id} from the store" in captured.err
    metrics = run(EvaluateCommand(model=f"store:{model_id}", store=store,
                                  data=DataOptions(source="fast-v1"), allow_overlap=True))
    assert metrics["model"] == f"store:{model_id}" and metrics["n"] >= 1

    assert main(["predict", str(cif), "--model", "store:cso-nothing", "--store", store]) == 2
    err = capsys.readouterr().err
    assert "no model 'cso-nothing'" in err and model_id in err


def test_train_on_an_empty_folder_writes_nothing_into_it(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "no fast-v1 JSON records" in err
    assert list(empty.iterdir()) == []
    assert not (tmp_path / "m").exists()


def test_train_with_descriptor_node_features(tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(["train", "--data", "fast-v1", "--members", "1", "--max-epochs", "2",
               "--node-features", "descriptors", "--out", str(out), *TINY])
    assert rc == 0
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["node_features"] == "descriptors"
    assert "--node-features descriptors" in manifest["metadata"]["command"]
    cif = tmp_path / "Nb.cif"       # no fast-v1 record is elemental Nb
    Structure(Lattice.cubic(3.3), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(cif))
    capsys.readouterr()
    assert main(["predict", str(cif), "--model", str(out), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["formula"] == "Nb" and row["lambda"] is not None


def test_predict_names_its_model_and_prints_tc_without_exponents(tmp_path, capsys):
    """Tc values print without exponents: ~1e-14 K as '< 0.01', not 1.1e-14."""
    import re

    from launchers.cli.model import format_mean_std

    cif = tmp_path / "Al.cif"
    Structure(Lattice.cubic(4.04), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(cif))
    assert main(["predict", str(cif)]) == 0
    out, err = capsys.readouterr()
    from betenet_model.pretrained import DEFAULT, pretrained_dir

    members = len(list(pretrained_dir().glob("member_*.pt")))
    assert f"model: shipped {DEFAULT} (cso, {members} members, trained on" in err
    assert not re.search(r"\de[-+]\d", out), out
    assert format_mean_std(1.1e-14, 2e-15, 0.01) == "< 0.01"
    assert format_mean_std(12.3456, 0.0, 0.01) == "12.35 ± 0.00"
    assert format_mean_std(3.0, 12.0, 0.1) == "3 ± 12"


def test_train_on_fast_v1_plus_jarvis_tc_rows(tmp_path, capsys):
    from pathlib import Path

    jarvis = tmp_path / "jarvis"
    jarvis.mkdir()
    lines = (Path(__file__).parents[1] / "data" / "jarvis-tc" / "records.jsonl").read_text()
    (jarvis / "records.jsonl").write_text(lines + '{"jid": "bad", "poscar": "x"}\n')
    out = tmp_path / "m"
    rc = main(["train", "--data", "fast-v1", "--data", str(jarvis), "--members", "1",
               "--max-epochs", "2", "--out", str(out), "--tc-loss-weight", "0.1", *TINY])
    err = capsys.readouterr().err
    assert rc == 0
    assert "dropped 1 of 7 lines (line 7: bad: no tc_K)" in err
    assert f"data: 6 rows from {jarvis} (6 with a Tc label only)" in err
    kept = len(load_fast_v1())
    left = len(list(packaged_fast_v1_dir().glob("*.json"))) - kept   # failed + unstable ones
    assert f"left out {left} record(s)" in err and "dynamically unstable" in err   # named
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["training_set"]["n_tc_only"] == 6
    assert manifest["config"]["training"]["tc_loss_weight"] == 0.1
    assert f"--data fast-v1 --data {jarvis}" in manifest["metadata"]["command"]


def test_evaluate_on_tc_only_rows(model_dir, capsys):
    from pathlib import Path

    jarvis = Path(__file__).parents[1] / "data" / "jarvis-tc"
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model_dir), "--data", str(jarvis),
                 "--format", "json", "--rows"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == out["n_tc_only"] == 6 and out["n_spectrum"] == 0
    assert out["n_hits"] == 3 and out["random_average_precision_tc5"] == 0.5
    for key in ("mae_tc_K", "baseline_mae_tc_K", "average_precision_tc5"):
        assert isinstance(out[key], float)
    assert "mae_lambda" not in out          # no spectrum, no λ metric
    # the baseline is the Tc of the mean training spectrum, the same for every row
    rows = out["rows"]
    assert len({r["tc_K_baseline"] for r in rows}) == 1
    truth = [r["tc_K_true"] for r in rows]
    assert out["baseline_mae_tc_K"] == pytest.approx(
        sum(abs(rows[0]["tc_K_baseline"] - t) for t in truth) / 6)
    assert rows[0]["lambda_true"] is None
    # both layouts at once: λ metrics over the spectrum rows, Tc metrics over all
    assert main(["evaluate", "--model", str(model_dir), "--data", "fast-v1", "--data",
                 str(jarvis), "--format", "json", "--allow-overlap"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["n_tc_only"] == 6 and both["n_spectrum"] >= 15
    assert both["n"] == both["n_spectrum"] + 6 and "mae_lambda" in both


def test_grouped_split_options(model_dir, capsys):
    data = ["--data", "fast-v1", "--format", "json", "--model", str(model_dir),
            "--allow-overlap"]
    assert main(["evaluate", *data, "--split", "test", "--split-by", "element",
                 "--hold-out-element", "Tl"]) == 0
    out = json.loads(capsys.readouterr().out)
    with_tl = [r for r in load_fast_v1() if "Tl" in {e.symbol for e in r.structure.composition}]
    assert out["n"] == len(with_tl) >= 2          # MgTl, YTl, SrTl, ...
    assert main(["evaluate", *data, "--split", "test", "--split-by", "element"]) == 2
    assert "needs the element" in capsys.readouterr().err
    assert main(["evaluate", *data, "--split", "test", "--split-by", "chemsys",
                 "--test-fraction", "0.3"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] >= 4


def test_evaluate_refuses_rows_of_the_training_set(model_dir, capsys):
    """model_dir trained on the 'train' side of SPLIT: scoring all rows would be in-sample."""
    data = ["--data", str(packaged_fast_v1_dir())]
    assert main(["evaluate", "--model", str(model_dir), *data]) == 2
    err = capsys.readouterr().err
    assert "are in the model's training set" in err and "--allow-overlap" in err
    assert main(["evaluate", "--model", str(model_dir), *data, "--allow-overlap"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["rows_in_training_set"] > 0 and "warning:" in captured.err
    assert main(["evaluate", "--model", str(model_dir), *data, "--split", "test", *SPLIT]) == 0
    assert json.loads(capsys.readouterr().out)["rows_in_training_set"] == 0


def test_evaluate_of_the_shipped_model_on_its_own_data_is_refused(capsys):
    assert main(["evaluate", "--data", "fast-v1", "--split", "test"]) == 2
    assert "in-sample" in capsys.readouterr().err


def test_mpd_input_comes_from_the_phonon_store_and_names_the_failing_structure(tmp_path):
    """`predict/evaluate --phonon-store` for an mpd model: one lookup, real SevenNet-0."""
    from launchers.cli.common import UserError
    from launchers.cli.model import _mlip_dos_of

    al = Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                     [0, 0.5, 0.5]]).get_primitive_structure()
    lone = Structure(Lattice.cubic(12.0), ["Cs"], [[0, 0, 0]])  # no neighbour: zero forces
    store = str(tmp_path / "phonons")
    [(freq, dos)] = _mlip_dos_of([al], ["al"], store)
    assert dos.shape == (1, freq.shape[0]) and dos.sum() > 0
    with pytest.raises(UserError, match="cs: no MLIP phonon DOS for the mpd model: .*zero forces"):
        _mlip_dos_of([al, lone], ["al", "cs"], store)


def test_foundation_features_tc_head_and_calibrated_sigma_from_the_cli(tmp_path, capsys):
    """`bete train --node-features sevennet-l3i5` with the Tc head and the long grid on the
    packaged fast-v1 and jarvis-tc rows; predict and evaluate report the calibrated σ."""
    from stores.jarvis_tc import packaged_jarvis_tc_dir

    jarvis = tmp_path / "jarvis"
    jarvis.mkdir()
    lines = (packaged_jarvis_tc_dir() / "records.jsonl").read_text().splitlines()
    (jarvis / "records.jsonl").write_text("\n".join(lines[:12]) + "\n")
    out, store = tmp_path / "m", str(tmp_path / "mlip")
    rc = main(["train", "--data", "fast-v1", "--data", str(jarvis), "--members", "4",
               "--max-epochs", "3", "--out", str(out), "--node-features", "sevennet-l3i5",
               "--smoothing-window", "31", "--network", "out_dim=126", "--network",
               "tc_head=true", "--network", "head=anchored", "--tc-head-weight", "0.3",
               "--phonon-store", store, "--quiet", *TINY])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "sevennet-l3i5 atom features" in err
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["node_features"] == "sevennet_l3i5" and len(manifest["grid_meV"]) == 126
    assert manifest["grid"]["savgol_window_points"] == 31
    assert "--smoothing-window 31" in manifest["metadata"]["command"]
    assert "--tc-head-weight 0.3" in manifest["metadata"]["command"]
    assert manifest["calibration"]["sigma_scale"]["tc_K"] > 0
    # predict: the features come from the store now (no model evaluation needed)
    nb = tmp_path / "Nb.cif"
    Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(nb))
    assert main(["predict", str(nb), "--model", str(out), "--phonon-store", store,
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)[0]
    assert row["sigma_calibrated"] is True and "tc_head_K" in row
    assert "calibrated 1σ" in captured.err
    # evaluate on the held-out side of the packaged jarvis-tc rows: coverage of that σ
    assert main(["evaluate", "--model", str(out), "--data", "jarvis-tc", "--split", "test",
                 "--test-fraction", "0.02", "--held-out", "--phonon-store", store,
                 "--format", "json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sigma_calibrated"] is True and 5 <= metrics["n"] <= 10
    assert 0.0 <= metrics["coverage_1sigma_tc_K"] <= 1.0 and "mae_tc_head_K" in metrics

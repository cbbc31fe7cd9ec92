import dataclasses
from pathlib import Path

import pytest

from betenet_model.training import TrainConfig
from launchers.cli.screen import status_rows
from stores.datasets import load_fast_v1
from stores.protocol import FAST_V1_FINGERPRINT
from stores.records import iter_screening_documents, load_rounds
from tests.conftest import PSLIBRARY
from tests.workflows.screening.conftest import TINY_NETWORK
from workflows.ml.predict import default_model_dir
from workflows.ml.train import train_from_records
from workflows.screening.active_learning import (
    ActiveLearningConfig,
    round_metrics,
    run_active_learning,
    training_settings,
)
from workflows.screening.flows import model_manifest

COARSE = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
          "ecutwfc": 25, "ecutrho": 200}


@pytest.fixture
def config(candidate_dir, tiny_model, tmp_path, pslibrary_dir):
    """Verification with the fast-v1 protocol (fast + pslibrary), so rounds add to its rows."""
    return ActiveLearningConfig(
        candidates=[str(candidate_dir)], rounds=2, top_k=2, model=str(tiny_model),
        overrides={}, pseudos=str(PSLIBRARY), members=2, max_epochs=4,
        network=TINY_NETWORK, models_dir=str(tmp_path / "models"),
        scratch_dir=str(tmp_path / "scratch"), campaign="t",
        prescreen=False)  # these tests count DFPT runs; test_prescreen.py tests the pre-screen


def test_two_rounds_retrain_on_the_verified(config, store, fake_dfpt):
    fake_dfpt.unstable = ("Nb",)
    rounds = run_active_learning(config, store)
    assert [r["status"] for r in rounds] == ["completed", "completed"]
    r1, r2 = rounds
    assert r1["n_screened"] == 4 and r1["n_rejected"] == 3      # broken, AlMg, Al duplicate
    assert len(r1["submitted"]) == 2 and len(r1["verified"]) == 2
    # round 2: the two verified are in the store, so only two candidates are left
    assert r2["n_screened"] == 2 and not set(r1["submitted"]) & set(r2["submitted"])
    stable_r1 = [v for v in r1["verification"] if v["status"] == "completed"]
    assert r2["n_training"] == len(load_fast_v1()) + len(stable_r1)
    assert r2["model_id"] != r1["model_id"]
    assert set(r1["training_ids"]) < set(r2["training_ids"])
    assert len(fake_dfpt.calls) == 4
    for v in r1["verification"] + r2["verification"]:
        assert v["tc_K_predicted"] is not None and v["input_hash"]
        if v["formula"] == "Nb":
            assert v["status"] == "unstable" and v["dynamically_stable"] is False
        else:
            assert v["tc_K_computed"] is not None and v["tc_K_computed"] >= 0
    # screening documents carry the computed values next to the predictions
    checked = [d for d in iter_screening_documents(store, {"campaign": "t"}) if d["verification"]]
    assert len(checked) == 4 and all(d["selected"] for d in checked)
    rows = status_rows(load_rounds(store, "t"))
    assert [r["round"] for r in rows] == [1, 2]
    for row in rows:
        for k in ("n_screened", "submitted", "verified", "hits_tc5"):
            assert isinstance(row[k], int)
    # a rerun repeats nothing
    again = run_active_learning(config, store)
    assert len(fake_dfpt.calls) == 4 and [r["round"] for r in again] == [1, 2]


def test_rounds_train_only_on_the_verification_protocol(config, store, fake_dfpt):
    """Coarser grids are another protocol: the fast-v1 rows are left out, and it is said."""
    config.overrides = COARSE
    said: list[str] = []
    rounds = run_active_learning(config, store, say=said.append)
    notice = next(m for m in said if m.startswith("protocol:"))
    assert FAST_V1_FINGERPRINT in notice and "never on a mix" in notice
    left_out = next(m for m in said if m.startswith("training rows:"))
    assert f"left out, never mixed in: {len(load_fast_v1())} of {FAST_V1_FINGERPRINT}" in left_out
    r1, r2 = rounds
    fingerprints = {r["protocol_fingerprint"] for r in rounds}
    assert len(fingerprints) == 1 and FAST_V1_FINGERPRINT not in fingerprints
    # two verified rows of the coarse protocol are too few to train on: the model stays
    assert r2["model_id"] == r1["model_id"]
    assert any("keeping the previous round's model" in m for m in said)


def test_resume_after_interruption_in_verification(config, store, fake_dfpt, tmp_path):
    fake_dfpt.interrupt_at = 3          # round 2, first DFPT run
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(config, store)
    r2 = load_rounds(store, "t")[1]
    assert r2["status"] == "verifying" and len(r2["submitted"]) == 2
    members = sorted((tmp_path / "models").glob("cso-*/member_*.pt"))
    assert len(members) == 2
    stamps = [p.stat().st_mtime_ns for p in members]
    fake_dfpt.interrupt_at = 4          # interrupt again after one more calculation
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(config, store)
    again = load_rounds(store, "t")[1]  # written once per phase: nothing since the screening
    assert again["status"] == "verifying" and again["submitted"] == r2["submitted"]
    assert again["verification"] == [] and again["updated_at"] == r2["updated_at"]
    rounds = run_active_learning(config, store)
    assert rounds[-1]["status"] == "completed"
    assert len(fake_dfpt.calls) == len(set(fake_dfpt.calls)) == 4   # nothing computed twice
    assert [p.stat().st_mtime_ns for p in members] == stamps       # nor trained twice
    assert rounds[-1]["submitted"] == r2["submitted"]                # same acquisitions


def test_round_metrics_by_hand():
    rows = [
        {"status": "completed", "dynamically_stable": True, "tc_K_predicted": 4.0,
         "tc_K_computed": 6.0, "lambda_predicted": 0.5, "lambda_computed": 0.7,
         "omega_log_K_predicted": 100.0, "omega_log_K_computed": 120.0},
        {"status": "completed", "dynamically_stable": True, "tc_K_predicted": 3.0,
         "tc_K_computed": 1.0, "lambda_predicted": 0.4, "lambda_computed": 0.3,
         "omega_log_K_predicted": 100.0, "omega_log_K_computed": 90.0},
        {"status": "unstable", "dynamically_stable": False, "tc_K_predicted": 9.0,
         "tc_K_computed": 30.0},
        {"status": "pending", "tc_K_predicted": 1.0, "tc_K_computed": None},
    ]
    m = round_metrics(rows, previous_best=7.5)
    assert m["n_verified"] == 3 and m["hits_tc5"] == 1 and m["n_unstable"] == 1
    assert m["hit_rate"] == pytest.approx(1 / 3)
    assert m["mae_tc_K_new"] == pytest.approx(2.0)
    assert m["mae_lambda_new"] == pytest.approx(0.15)
    assert m["best_tc_K_round"] == 6.0 and m["best_tc_K"] == 7.5


def test_config_checks(candidate_dir):
    with pytest.raises(ValueError, match="top-k"):
        ActiveLearningConfig(candidates=[str(candidate_dir)], top_k=0)
    with pytest.raises(ValueError, match="candidate"):
        ActiveLearningConfig(candidates=[])


@pytest.mark.slow
def test_round_with_the_prescreen_skips_an_mlip_unstable_candidate(config, store, fake_dfpt):
    """Real SevenNet-0 phonons of every checked candidate (only the DFPT run is faked).

    Simple-cubic Al (one atom, a = 2.7 Å) has clearly imaginary MLIP phonons (so has bcc Li
    at 3.44 Å with SevenNet-0).  The tiny model ranks the candidates; the assertions hold for
    any ranking, and the first ones fail loudly (instead of passing vacuously) if a change
    leaves Al_sc out of the pre-screen's reach.
    """
    from pymatgen.core import Lattice, Structure

    cands = Path(config.candidates[0])
    Structure(Lattice.cubic(2.7), ["Al"], [[0, 0, 0]]).to(filename=str(cands / "Al_sc.cif"))
    config = dataclasses.replace(config, prescreen=True, rounds=1, top_k=2)
    said: list[str] = []
    [r1] = run_active_learning(config, store, say=said.append)
    ranked, skipped, submitted = (r1["candidates"], r1["metrics"]["prescreen_skipped"],
                                  r1["submitted"])
    docs = {d["candidate_id"]: d for d in iter_screening_documents(store, {"campaign": "t"})}
    assert sorted(ranked, key=lambda c: docs[c]["rank"]) == ranked and r1["n_screened"] == 5
    assert "Al_sc" in skipped and len(submitted) == config.top_k
    # Al_sc stood in the way: a candidate ranked below it took its place
    assert ranked.index("Al_sc") < ranked.index(submitted[-1])
    assert submitted == [c for c in ranked if c not in skipped][:config.top_k]
    assert sorted(fake_dfpt.calls) == sorted(docs[c]["verification"]["input_hash"]
                                             for c in submitted)
    for c in ranked[:ranked.index(submitted[-1]) + 1]:          # every one walked past
        verdict = docs[c]["prescreen"]
        assert verdict["potential"] == "sevennet-0" and verdict["threshold_meV"] == -3.0
        assert verdict["passed"] is (c not in skipped) is docs[c]["selected"]
        if c in skipped:
            assert verdict["min_frequency_meV"] < -3.0 and not docs[c]["verification"]
            assert "not sent to DFPT" in verdict["reason"]
            assert any(c in m and "not sent to DFPT" in m for m in said)
    for c in ranked[ranked.index(submitted[-1]) + 1:]:          # never looked at
        assert docs[c].get("prescreen") is None


def test_training_settings_of_the_shipped_model():
    settings = training_settings(model_manifest(default_model_dir()))
    assert settings["variant"] == "cso" and settings["node_features"] == "sevennet_l3i5"
    assert settings["network"]["head"] == "anchored" and "input_dim" not in settings["network"]
    assert settings["network"]["out_dim"] == 126 and settings["network"]["tc_head"] is True
    assert settings["smoothing_window"] == 31
    assert settings["training"]["moment_loss_weight"] == pytest.approx(0.3)
    assert settings["training"]["tc_head_weight"] == pytest.approx(0.3)
    assert training_settings(None) == {"variant": "cso", "node_features": "onehot_mass",
                                       "network": {}, "training": {}}


def test_later_rounds_follow_the_training_settings_of_the_previous_model(config, store, fake_dfpt,
                                                              tmp_path):
    """A descriptor-input, anchored-head round-1 model is followed by one of the same kind."""
    first = tmp_path / "desc"
    train_from_records(load_fast_v1(None)[:8], first, members=2, seed=1,
                       node_features="descriptors",
                       training=TrainConfig(max_epochs=4, schedule="early_stopping",
                                            checkpoint_every=0, moment_loss_weight=0.02),
                       network_options={**TINY_NETWORK, "head": "anchored", "mul": 2})
    config.model = str(first)
    said: list[str] = []
    r1, r2 = run_active_learning(config, store, say=said.append)
    assert r2["model_id"] != r1["model_id"]
    second = model_manifest(r2["metrics"]["model_path"])
    assert second["node_features"] == "descriptors"
    assert second["config"]["network"]["head"] == "anchored"
    assert second["config"]["network"]["mul"] == TINY_NETWORK["mul"]     # --network wins
    assert second["config"]["training"]["moment_loss_weight"] == pytest.approx(0.02)
    assert second["config"]["training"]["max_epochs"] == config.max_epochs
    line = next(m for m in said if m.startswith("model: training"))
    assert "descriptors" in line and "head=anchored" in line


def test_later_rounds_keep_the_tc_only_rows_and_the_foundation_inputs(config, store, fake_dfpt,
                                                                      tmp_path):
    """Round 2 learns from the jarvis-tc rows round 1's model saw (packaged copy), with the
    same foundation features, Tc head and grid; before, it lost the Tc-only rows."""
    from stores.jarvis_tc import load_jarvis_tc, packaged_jarvis_tc_dir

    jarvis = load_jarvis_tc(packaged_jarvis_tc_dir())[:6]
    first = tmp_path / "l3i5"
    train_from_records(load_fast_v1(None)[1:8] + jarvis, first, members=2, seed=1,
                       node_features="sevennet_l3i5", smoothing_window=31,
                       training=TrainConfig(max_epochs=3, schedule="early_stopping",
                                            checkpoint_every=0, tc_head_weight=0.3),
                       network_options={**TINY_NETWORK, "head": "anchored", "out_dim": 126,
                                        "tc_head": True},
                       mlip_store=store)
    config.model = str(first)
    said: list[str] = []
    r1, r2 = run_active_learning(config, store, say=said.append)
    second = model_manifest(r2["metrics"]["model_path"])
    assert second["training_set"]["n_tc_only"] == 6
    assert {r.id for r in jarvis} <= set(second["training_set"]["ids"])
    assert second["node_features"] == "sevennet_l3i5"
    assert second["config"]["network"]["tc_head"] is True
    assert second["config"]["network"]["out_dim"] == 126 and len(second["grid_meV"]) == 126
    assert second["config"]["smoothing_window"] == 31
    assert second["config"]["training"]["tc_head_weight"] == pytest.approx(0.3)
    assert any("6 Tc-only jarvis-tc rows" in m for m in said)
    assert r2["n_screened"] >= 1                      # candidates got their atom features

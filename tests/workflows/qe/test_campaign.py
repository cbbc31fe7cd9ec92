"""Campaign planning, skips and the outcome table (no QE run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import spglib
from pymatgen.core import Lattice, Structure
from scipy.stats import spearmanr

from stores.claims import ClaimBoard
from stores.datasets import packaged_fast_v1_dir
from tests.conftest import DATA, FCC_SITES
from workflows.qe.campaign import (
    BUDGET_STOP,
    INPUT_ERROR,
    NOT_STARTED,
    RESERVED,
    TIMED_OUT,
    CampaignOutcome,
    classify_qe_error,
    estimated_cost,
    irreducible_qk_pairs,
    outcome_table,
    plan_campaign,
    run_campaign,
)
from workflows.qe.errors import QEError
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.handlers import check_output

TINY = {"k_grid": [2, 2, 2], "k_grid_dense": [4, 4, 4], "q_grid": [2, 2, 2],
        "ecutwfc": 15, "ecutrho": 60}


def _structures():
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES)
    alsi = Structure(Lattice.cubic(4.2), ["Al", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cs = Structure(Lattice.cubic(6.0), ["Cs"], [[0, 0, 0]])
    return [("alsi", alsi), ("al", al), ("107", al.copy()), ("cs", cs), ("305", alsi.copy())]


def test_plan_cheapest_first_reserved_and_input_errors_apart(tmp_path):
    maker = ElphFlowMaker.from_preset(overrides=TINY, scratch_dir=str(tmp_path))  # Debian: no Cs
    planned, classified = plan_campaign(_structures(), maker)
    assert [p.source_id for p in planned] == ["al", "alsi"]            # 1 atom before 2
    assert planned[0].cost < planned[1].cost
    outcome = {o.source_id: o.outcome for o in classified}
    assert outcome == {"107": RESERVED, "305": RESERVED, "cs": INPUT_ERROR}
    assert "Cs" in next(o.message for o in classified if o.source_id == "cs")


def test_qk_pairs_reduce_with_the_little_group_of_q():
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4, FCC_SITES).get_primitive_structure()
    cell = (al.lattice.matrix, al.frac_coords, [1])
    n_k = len(np.unique(spglib.get_ir_reciprocal_mesh([6, 6, 6], cell, is_shift=[0, 0, 0])[0]))
    assert irreducible_qk_pairs(al, [1, 1, 1], [6, 6, 6]) == n_k == 16
    # Γ, X and L: the little groups of X and L are smaller than the full group
    pairs = irreducible_qk_pairs(al, [2, 2, 2], [6, 6, 6])
    assert 3 * n_k < pairs < 3 * 216
    strained = al.copy()
    strained.apply_strain([0.01, 0.02, 0.0])
    assert irreducible_qk_pairs(strained, [2, 2, 2], [6, 6, 6]) > pairs


def test_estimated_cost_ranks_the_measured_wall_times(pslibrary_dir):
    """On the shipped records (real campaign wall times on 2 cores) the order is right."""
    maker = ElphFlowMaker.from_preset(pseudo_family=str(pslibrary_dir))
    cost, wall = [], []
    for path in sorted(packaged_fast_v1_dir().glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("wall_s") and "structure" in doc:
            cost.append(estimated_cost(maker.input_set(Structure.from_dict(doc["structure"]))))
            wall.append(doc["wall_s"])
    assert len(wall) >= 30
    assert spearmanr(cost, wall)[0] > 0.6        # full grids without symmetry: -0.34


def test_budget_and_known_failures_start_nothing(tmp_path, store):
    maker = ElphFlowMaker.from_preset(overrides=TINY, scratch_dir=str(tmp_path / "scratch"))
    planned, _ = plan_campaign(_structures(), maker)
    board = ClaimBoard(tmp_path / "claims")
    board.record_failure(planned[1].key, "cannot_bracket_ef", "pw.x failed: cannot bracket Ef")
    out = run_campaign(planned, maker, store, board, budget_s=1.0)
    assert [(o.source_id, o.outcome, o.new) for o in out] == [
        ("al", NOT_STARTED, False), ("alsi", "failed: cannot_bracket_ef", False)]
    assert not (tmp_path / "scratch").exists() and not list(board.directory.glob("*.claim"))


def test_outcome_table_counts_classes_and_hours():
    outcomes = [CampaignOutcome("1", "Al", "completed stable", new=True, wall_s=1800),
                CampaignOutcome("2", "Pb", "completed stable", wall_s=3600),
                CampaignOutcome("3", "Nb", "unstable", new=True, wall_s=900),
                CampaignOutcome("4", "Si", "failed: cannot_bracket_ef", new=True, wall_s=360),
                CampaignOutcome("5", "X", RESERVED), CampaignOutcome("6", "Y", NOT_STARTED)]
    table = {r["outcome"]: r for r in outcome_table(outcomes)}
    assert table["completed stable"] == {"outcome": "completed stable", "structures": 2,
                                         "new_this_run": 1, "hours": 1.5}
    assert table["attempted (total)"]["structures"] == 4
    assert table["attempted (total)"]["hours"] == 1.85
    assert table[RESERVED]["structures"] == 1


@pytest.mark.parametrize("code, name, returncode, budget, outcome, recorded", [
    ("ph", "al_ph_max_seconds.out", 1, True, BUDGET_STOP, None),
    ("ph", "al_ph_max_seconds.out", 1, False, TIMED_OUT, "timed_out"),
    ("ph", "al_ph_sigterm.out", -15, True, "failed: killed", "killed"),
    ("ph", "al_ph_niter.out", 1, False, "failed: ph_not_converged", "ph_not_converged"),
    ("pw", "al_scf_bracket.out", 1, False, "failed: cannot_bracket_ef", "cannot_bracket_ef"),
    ("ph", "al_ph_missing_a2Fsave.out", 1, False, "failed: crash", "crash"),
])
def test_real_qe_failures_get_a_class(code, name, returncode, budget, outcome, recorded):
    """Each failure class, from the real QE output that showed it (tests/data/qe/failures)."""
    text = (DATA / "qe" / "failures" / name).read_text()
    failure = check_output(code, text, returncode=returncode)
    err = QEError(f"{code}.x", failure.error_line, "/calc", kind=failure.kind)
    assert classify_qe_error(err, budget_binding=budget) == (outcome, recorded)


def test_a_qe_time_limit_kill_is_timed_out():
    """run_qe's own kill after qe_timeout_s (kind 'timeout') is 'timed out' either way."""
    err = QEError("ph.x", "killed after the 900 s time limit", "/calc", kind="timeout")
    assert classify_qe_error(err, budget_binding=True) == (TIMED_OUT, "timed_out")


def test_campaign_sb_ph_killed_at_the_qe_time_limit():
    """Sb (bete-net 183, fast + pslibrary): ph.x killed by the 1500 s qe_timeout_s limit in
    the first campaign, inside q point 2 of 3 (tests/data/qe/failures/sb_ph_timeout.out).
    The output just stops; run_qe raises kind 'timeout': 'timed out', skipped next time
    unless --retry-failed, which resumes ph.x at q point 2."""
    text = (DATA / "qe" / "failures" / "sb_ph_timeout.out").read_text()
    assert text.count("Calculation of q") == 2 and "JOB DONE" not in text
    assert check_output("ph", text).kind == "incomplete"
    assert check_output("ph", text, returncode=-15).kind == "killed"
    err = QEError("ph.x", "killed after the 1500 s time limit", "/calc", kind="timeout")
    assert classify_qe_error(err, budget_binding=False) == (TIMED_OUT, "timed_out")


def test_campaign_from_paths_plans_and_runs_the_files(tmp_path):
    """`bete campaign`'s work without the CLI: files read (an unreadable one is an input
    error, not a stop), reserved ids and --skip-ids left out, plan only or a budget-bound run."""
    from stores.config import load_job_store
    from workflows.qe.campaign import campaign_from_paths

    paths = []
    for name, structure in _structures():
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(structure.to_json())
    (tmp_path / "bad.cif").write_text("garbage")
    paths.append(tmp_path / "bad.cif")
    options = {"preset": "fast", "overrides": TINY, "scratch_dir": str(tmp_path / "scratch"),
               "skip_ids": []}
    said: list[str] = []
    plan = campaign_from_paths(paths, plan_only=True, progress=said.append, **options)
    assert [p.source_id for p in plan.planned] == ["al", "alsi"] and plan.outcomes is None
    left = {o.source_id: o.outcome for o in plan.left_out}
    assert left == {"107": RESERVED, "305": RESERVED, "cs": INPUT_ERROR, "bad": INPUT_ERROR}
    assert said[0].startswith("campaign: 2 structures to run") and "4 left out" in said[0]

    said.clear()
    run = campaign_from_paths(
        paths[:2], claims=lambda: tmp_path / "claims", budget_s=1.0, progress=said.append,
        store=lambda: _connected(load_job_store(str(tmp_path / "store"))), **options)
    assert [(o.source_id, o.outcome) for o in run.outcomes] == [("al", NOT_STARTED),
                                                                 ("alsi", NOT_STARTED)]
    assert not (tmp_path / "scratch").exists()
    with pytest.raises(ValueError, match="needs `claims` and `store`"):
        campaign_from_paths(paths[:2], **options)


def _connected(store):
    store.connect()
    return store

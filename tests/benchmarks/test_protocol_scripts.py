"""The convergence-study ladder and the JARVIS cross-check (benchmarks/ scripts)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def convergence():
    return _script("protocol_convergence")


@pytest.mark.parametrize("nsites, base_k", [(1, [12, 12, 12]), (2, [8, 8, 8]), (2, [10, 10, 10]),
                                            (3, [8, 8, 4])])
def test_ladder_grids_are_commensurate_and_only_q_moves(convergence, nsites, base_k):
    cell = Structure(Lattice.hexagonal(4.0, 5.4) if nsites == 3 else Lattice.cubic(3.0),
                     ["Nb"] * nsites, [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.5]][:nsites])
    points = convergence.ladder(nsites)
    names = [p.name for p in points]
    assert convergence.reference_name(nsites) in names
    assert ("q6" in names) == (nsites == 1)
    grids = {p.name: convergence.point_overrides(cell, base_k, p, nsites) for p in points}
    for o in grids.values():   # ph.x needs k and k+q on the dense grid
        for d, k, q in zip(o["k_grid_dense"], o["k_grid"], o["q_grid"], strict=True):
            assert d % k == 0 and d % q == 0 and d >= 2 * k
    q_points = [o for n, o in grids.items() if n.startswith("q")]
    assert len({tuple(o["k_grid"]) for o in q_points}) == 1          # fixed k
    assert len({tuple(o["k_grid_dense"]) for o in q_points}) == 1    # fixed dense grid
    assert len({tuple(o["q_grid"]) for o in q_points}) == len(q_points)
    ref = grids[convergence.reference_name(nsites)]
    assert all(k > r for k, r in zip(grids["k+"]["k_grid"], ref["k_grid"], strict=True))
    assert grids["s0.04"]["pw"] == {"system": {"degauss": 0.04}}
    assert grids["s0.04"]["q_grid"] == ref["q_grid"] and "pw" not in ref


def test_reserved_ids_are_refused(convergence, tmp_path):
    with pytest.raises(SystemExit, match="reserved"):
        convergence.load_structures([21, 689], tmp_path)


def test_relative_lambda_and_verdict_against_the_reference(convergence):
    rows = [{"source_id": "1", "reference": True, "lambda": 1.0, "stable": True},
            {"source_id": "1", "reference": False, "lambda": 2.5, "stable": False},
            {"source_id": "2", "reference": False, "lambda": 0.5, "stable": True}]
    convergence._relative_to_reference(rows)
    assert [r["dlambda_rel"] for r in rows] == [0.0, 1.5, None]
    assert [r["verdict_matches"] for r in rows] == [True, False, None]


def test_crosscheck_finds_the_shipped_strong_couplers_in_jarvis():
    """The shipped fast-v1 records against the 496 shared jarvis-tc rows (../shared)."""
    jarvis_dir = REPO.parent / "shared" / "datasets" / "jarvis-tc"
    if not jarvis_dir.is_dir():
        pytest.skip(f"{jarvis_dir} is not here (../shared is only beside the repo in dev and CI)")
    check = _script("jarvis_crosscheck")
    from stores.datasets import load_records, packaged_fast_v1_dir

    records = load_records(packaged_fast_v1_dir(), report=lambda m: None)
    jarvis = load_records(jarvis_dir, report=lambda m: None)
    rows = [check.row_of(r, j) for r, j in check.matches(records, jarvis)]
    by_formula = {r["formula"]: r for r in rows}
    assert {"NbN", "VC", "V", "AlNi"} <= set(by_formula)
    assert by_formula["NbN"]["jid"] == "JVASP-36335"
    assert by_formula["NbN"]["tc_jarvis_K"] == pytest.approx(17.6, abs=0.1)
    stats = check.summary(rows)
    assert stats["matches"] == len(rows)
    assert stats["mae_allen_dynes_K"] == pytest.approx(
        sum(abs(r["tc_ours_K"] - r["tc_jarvis_K"]) for r in rows) / len(rows))
    assert math.isfinite(stats["median_ratio"]) and stats["median_ratio"] > 1  # fast-v1 runs hot


def test_ladder_order_runs_whole_ladders_reference_first(convergence):
    class Item:
        def __init__(self, cost):
            self.cost = cost

    def entry(sid, name, q, cost, ref=False):
        return {"source_id": sid, "point": convergence.Point(name, q), "item": Item(cost),
                "reference": ref}

    entries = [entry("a", "q2", 2, 1), entry("a", "q4", 4, 50, True), entry("a", "k+", 4, 60),
               entry("b", "q2", 2, 2), entry("b", "q4", 4, 20, True), entry("b", "q3", 3, 9)]
    ordered = [(e["source_id"], e["point"].name)
               for e in convergence.order_entries(entries, "ladder")]
    assert ordered == [("a", "q4"), ("a", "q2"), ("b", "q4"), ("b", "q3"), ("b", "q2"),
                       ("a", "k+")]
    by_cost = [e["item"].cost for e in convergence.order_entries(entries, "cost")]
    assert by_cost == sorted(by_cost)

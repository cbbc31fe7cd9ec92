"""benchmarks/model_accuracy.py's table: rows scored per seed on that seed's common ids."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("model_accuracy",
                                                  REPO / "benchmarks" / "model_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["model_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def _rows(ids, error):
    return [{"id": i, **{f"{k}_true": 1.0 for k in ("lambda", "omega_log_K", "tc_K")},
             **{f"{k}_pred": 1.0 + error for k in ("lambda", "omega_log_K", "tc_K")}}
            for i in ids]


def test_a_split_that_moves_with_the_seed_is_scored_on_each_seeds_own_rows():
    ma = _script()
    # chemsys: the test rows differ per seed; a model must be scored on all of each seed's
    results = [{"config": "m", "members": 2, "epochs": 3, "split": "chemsys", "seed": s,
                "test_rows": _rows(ids, 0.5)}
               for s, ids in ((0, ["a", "b", "c"]), (1, ["c", "d", "e", "f"]))]
    baselines = {"chemsys": {"mean spectrum": [
        {"seed": 0, "test_rows": _rows(["a", "b", "c"], 1.0)},
        {"seed": 1, "test_rows": _rows(["c", "d", "e", "f"], 1.0)}]}}
    text = ma.table(results, baselines, ["chemsys"])
    model = next(line for line in text.splitlines() if line.startswith("| m (2×3)"))
    cells = [c.strip() for c in model.strip("|").split("|")]
    assert cells[1] == "3"               # the smaller seed's rows, not the 1 shared by both
    assert cells[2] == "0.500"
    ids = ma.common_ids({"m": {0: _rows(["a", "b"], 0)}, "mean spectrum": {0: _rows(["b"], 0)},
                         "tree, x": {0: _rows(["z"], 0)}})
    assert ids == {0: {"b"}}

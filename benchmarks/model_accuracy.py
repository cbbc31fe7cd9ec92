"""Model accuracy against honest baselines: which variant earns its place.

Rows: node encoding (paper one-hot × mass CSO, element-descriptor CSO), each trained on the
fast-v1 α²F records alone and with the jarvis-tc Tc-only rows of the training split added
(mixed supervision, ``--tc-loss-weight``). Columns:

- fast-v1 out of bag: λ, ω_log, Tc MAE of each record predicted by the members that did not
  see it, against the mean-training-spectrum baseline on the same rows (``n_oob`` rows);
- held-out 20 % of jarvis-tc (split seed 0, the same for every row of the table): Tc MAE
  against the mean-spectrum baseline, average precision for Tc > 5 K against random (the hit
  fraction), and a scikit-learn gradient-boosted tree trained on the other 80 % on
  composition descriptors (fraction-weighted mean/min/max/range of the element descriptors,
  sites and volume per atom).

Every cell is mean ± spread (standard deviation) over ``--seeds`` model seeds.

Not here yet: the ``mpd`` variant and the MLIP-based columns (scaled-MLIP-DOS baseline,
phonon moments for the tree) need the MLIP phonon documents (issue 10).

The budget is what a 2-core shared machine allows (defaults: 2 members of ``mul=8``,
``embed_dim=32`` networks, at most 20 epochs each (tempered schedule, so stage-1 early
stopping applies), 3 seeds: ~10 min with ``--jobs 2`` on two free cores, far longer on a
loaded machine; ``--seeds 1`` for a first look); with the paper's
budget (100 full-size members, tempered schedule to the end) the numbers will differ.

Usage::

    python benchmarks/model_accuracy.py                       # the table
    python benchmarks/model_accuracy.py --epochs 200 --members 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JARVIS = ROOT.parent / "shared" / "datasets" / "jarvis-tc"
CONFIGS = [("onehot_mass", False), ("onehot_mass", True), ("descriptors", False),
           ("descriptors", True)]


def load_data(jarvis_dir):
    """fast-v1 records, jarvis-tc train and test rows (split seed 0, 20 %)."""
    from stores.datasets import load_fast_v1, load_records, split_records

    fast = load_fast_v1(None)
    jarvis = load_records(jarvis_dir, report=print)
    train, test = split_records(jarvis, 0.2, seed=0)
    return fast, train, test


def run_one(task):
    """Train one ensemble and score it; returns a dict of metrics."""
    import torch

    torch.set_num_threads(1)
    from betenet_model.training import TrainConfig
    from workflows.ml.evaluate import evaluate_records, out_of_bag_metrics
    from workflows.ml.train import train_from_records

    node_features, with_tc, seed, args = task
    fast, jtrain, jtest = load_data(args["jarvis"])
    rows = fast + (jtrain if with_tc else [])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ens = train_from_records(
            rows, Path(tmp) / "ens", members=args["members"], seed=seed,
            node_features=node_features,
            training=TrainConfig(max_epochs=args["epochs"], checkpoint_every=0,
                                 tc_loss_weight=args["tc_loss_weight"]),
            network_options={"mul": args["mul"], "embed_dim": args["embed_dim"]})
        wall = time.perf_counter() - start
        oob = out_of_bag_metrics(ens, fast)
        held, _ = evaluate_records(ens, jtest)
    return {"node_features": node_features, "jarvis_rows": with_tc, "seed": seed,
            "train_s": wall, **oob,
            **{f"jarvis_{k}": held[k] for k in ("n", "mae_tc_K", "baseline_mae_tc_K",
                                                 "average_precision_tc5",
                                                 "random_average_precision_tc5")}}


def composition_features(records):
    """Fraction-weighted mean, min, max, range of the element descriptors + cell size."""
    from betenet_model.elements import element_descriptors

    out = []
    for r in records:
        comp = r.structure.composition.fractional_composition
        z = np.array([el.Z for el in comp.elements])
        x = np.array([comp[el] for el in comp.elements])
        d = element_descriptors(z)
        mean = (x[:, None] * d).sum(axis=0)
        out.append(np.concatenate([mean, d.min(axis=0), d.max(axis=0),
                                   d.max(axis=0) - d.min(axis=0),
                                   [len(r.structure), r.structure.volume / len(r.structure)]]))
    return np.array(out)


def tree_baseline(jarvis_dir, seeds):
    """Gradient-boosted tree on composition descriptors: jarvis test Tc MAE and AP per seed."""
    from sklearn.ensemble import GradientBoostingRegressor

    from workflows.ml.evaluate import average_precision

    _, train, test = load_data(jarvis_dir)
    xtr, xte = composition_features(train), composition_features(test)
    ytr = np.array([r.tc_K for r in train])
    yte = np.array([r.tc_K for r in test])
    out = []
    for seed in seeds:
        model = GradientBoostingRegressor(random_state=seed, n_estimators=300, max_depth=3,
                                          learning_rate=0.05, subsample=0.8)
        pred = model.fit(xtr, ytr).predict(xte)
        out.append({"mae": float(np.mean(np.abs(pred - yte))),
                    "ap": average_precision(yte > 5.0, pred),
                    "constant_mae": float(np.mean(np.abs(np.mean(ytr) - yte)))})
    return out


def fmt(values, digits=2):
    """``mean ± std`` of a list (None entries dropped)."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def main(argv=None):
    """Run the grid and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jarvis", default=str(JARVIS), help="jarvis-tc folder")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--mul", type=int, default=8)
    p.add_argument("--embed-dim", type=int, default=32)
    p.add_argument("--tc-loss-weight", type=float, default=0.01)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed … +seeds-1")
    p.add_argument("--json", help="also write every result here (updated as tasks finish)")
    p.add_argument("--table-from", nargs="+", metavar="JSON",
                   help="print the table from earlier --json files instead of training")
    args = p.parse_args(argv)
    opts = {"jarvis": args.jarvis, "members": args.members, "epochs": args.epochs,
            "mul": args.mul, "embed_dim": args.embed_dim, "tc_loss_weight": args.tc_loss_weight}
    # the slow tasks (with the jarvis rows) first, so the pool ends together
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(nf, tc, seed, opts) for nf, tc in sorted(CONFIGS, key=lambda c: not c[1])
             for seed in seeds]
    start = time.perf_counter()
    results = []
    if args.table_from:
        saved = [json.loads(Path(f).read_text()) for f in args.table_from]
        results = [r for d in saved for r in d["results"]]
        seeds = sorted({r["seed"] for r in results})
        first = saved[0]["args"]
        args.members, args.epochs, args.mul = first["members"], first["epochs"], first["mul"]
        args.embed_dim, args.tc_loss_weight = first["embed_dim"], first["tc_loss_weight"]
        tasks = []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(run_one, t) for t in tasks]):
            results.append(fut.result())
            print("done:", json.dumps(results[-1]), flush=True)     # partial results survive
            if args.json:
                Path(args.json).write_text(json.dumps({"args": vars(args),
                                                       "results": results}, indent=1))
    trees = tree_baseline(args.jarvis, seeds)
    print(f"budget: {args.members} members × {args.epochs} epochs, mul={args.mul}, "
          f"embed_dim={args.embed_dim}, tc_loss_weight={args.tc_loss_weight}, "
          f"seeds {list(seeds)}; {time.perf_counter() - start:.0f} s")
    head = ("model", "+jarvis", "n_oob", "λ MAE (base)", "ω_log MAE K (base)",
            "Tc MAE K (base)", "jarvis Tc MAE K (base)", "AP Tc>5 (random)")
    lines = [head]
    for nf, tc in CONFIGS:
        rs = [r for r in results if r["node_features"] == nf and r["jarvis_rows"] == tc]
        name = "cso one-hot×mass" if nf == "onehot_mass" else "cso descriptors"

        def cell(key, base, digits=2, rs=rs):
            return f"{fmt([r[key] for r in rs], digits)} ({fmt([r[base] for r in rs], digits)})"

        lines.append((
            name, "yes" if tc else "no", fmt([r["n_oob"] for r in rs], 1),
            cell("oob_mae_lambda", "oob_baseline_mae_lambda"),
            cell("oob_mae_omega_log_K", "oob_baseline_mae_omega_log_K", 0),
            cell("oob_mae_tc_K", "oob_baseline_mae_tc_K"),
            cell("jarvis_mae_tc_K", "jarvis_baseline_mae_tc_K"),
            cell("jarvis_average_precision_tc5", "jarvis_random_average_precision_tc5", 3)))
    lines.append(("gradient-boosted tree (composition)", "yes", "-", "-", "-", "-",
                  f"{fmt([t['mae'] for t in trees])} ({fmt([t['constant_mae'] for t in trees])}"
                  " const)", fmt([t["ap"] for t in trees], 3)))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print("mpd and the MLIP columns: not available until the MLIP phonon documents exist.")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results,
                                               "tree": trees}, indent=1))


if __name__ == "__main__":
    main()

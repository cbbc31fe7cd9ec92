"""Retrospective active learning (fast-v1 or jarvis-tc pool): acquisition functions vs random.

Simulated campaign: the labels of every record are known, the loop only pretends not to
know them.  Per seed, a random initial training set of ``--initial`` records is drawn;
each round trains a tiny BETE-NET ensemble on the training set, ranks the remaining pool
by an acquisition function (``mean``, ``ucb``, ``pi``, ``ei``; ``random`` draws uniformly),
"verifies" the top ``--k`` (moves them with their true labels into the training set) and
records

- ``hits``: Tc > 5 K materials found so far by the acquisitions (cumulative);
- ``ap``: average precision of the round's ranking of the pool for Tc > 5 K (None when the
  pool holds no hit; for random, the pool's hit fraction = its expected AP);
- ``enrichment``: hits found / hits expected from random picks of the same number of
  pool records (hypergeometric mean, k·rounds·hits₀/pool₀), averaged over seeds.

``--pool jarvis``: the pool is the 496 jarvis-tc materials and their DFT Tc is the oracle;
every training set also holds the fast-v1 α²F records (mixed supervision, the Tc-only rows
through the differentiable Allen–Dynes loss) and species are encoded by element descriptors.
Defaults there: 20 initial jarvis rows, 5 rounds of 10 picks (79 of 496 have Tc > 5 K).

CAVEAT (fast-v1 pool): fast-v1 holds only 17 records (16 dynamically stable, 4 with
Tc > 5 K: Pb, Ta, V, MgTl).  With so few, every number is noise-dominated; this benchmark
shows that the loop runs end to end and how to read its output, not which acquisition
function is better.

Usage::

    python benchmarks/retrospective_al.py                   # ~2-4 minutes on 1 core
    python benchmarks/retrospective_al.py --seeds 5 --rounds 4 --k 2 --json out.json
    python benchmarks/retrospective_al.py --pool jarvis --strategies random ucb mean
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

STRATEGIES = ("random", "mean", "ucb", "pi", "ei")
TINY = {"mul": 4, "embed_dim": 8, "radial_neurons": 16}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pool", choices=("fast-v1", "jarvis"), default="fast-v1",
                   help="fast-v1 records, or jarvis-tc (Tc oracle; fast-v1 always trained on)")
    p.add_argument("--jarvis", default=str(Path(__file__).resolve().parents[2] / "shared"
                                           / "datasets" / "jarvis-tc"))
    p.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    p.add_argument("--node-features", choices=("onehot_mass", "descriptors"),
                   help="default: onehot_mass (fast-v1 pool), descriptors (jarvis pool)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed … +seeds-1")
    p.add_argument("--initial", type=int, help="initial training records (4; jarvis 20)")
    p.add_argument("--rounds", type=int, help="rounds (3; jarvis 5)")
    p.add_argument("--k", type=int, help="acquisitions per round (2; jarvis 10)")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--kappa", type=float, default=1.0)
    p.add_argument("--head", choices=("relu-mean", "anchored"), default="relu-mean",
                   help="output head (NetworkConfig.head)")
    p.add_argument("--moment-loss-weight", type=float, default=0.0,
                   help="TrainConfig.moment_loss_weight (loss on λ and ln ω_log)")
    p.add_argument("--json", help="write the per-seed results here")
    args = p.parse_args(argv)
    jarvis = args.pool == "jarvis"
    for name, small, large in (("initial", 4, 20), ("rounds", 3, 5), ("k", 2, 10)):
        if getattr(args, name) is None:
            setattr(args, name, large if jarvis else small)
    node_features = args.node_features or ("descriptors" if jarvis else "onehot_mass")

    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("workflows.ml.predict").setLevel(logging.ERROR)   # extrapolation notes
    from betenet_model.training import TrainConfig
    from stores.datasets import load_fast_v1
    from stores.jarvis_tc import load_jarvis_tc
    from workflows.common.physics import HIT_TC_K
    from workflows.ml.data import record_truth
    from workflows.ml.evaluate import average_precision
    from workflows.ml.predict import load_ensemble, predict_structures
    from workflows.ml.train import train_from_records
    from workflows.screening.acquisition import acquisition_scores

    base_rows = load_fast_v1(None) if jarvis else []
    records = load_jarvis_tc(args.jarvis) if jarvis else load_fast_v1(None)
    tc = {r.id: float(r.tc_K) if jarvis else record_truth(r).tc_allen_dynes_K for r in records}
    hits_all = {i for i, t in tc.items() if t > HIT_TC_K}
    named = "" if jarvis else f" ({', '.join(r.formula for r in records if r.id in hits_all)})"
    print(f"{args.pool}: {len(records)} records, {len(hits_all)} with Tc > {HIT_TC_K} K"
          f"{named}; initial {args.initial}, {args.rounds} rounds x k={args.k}, seeds "
          f"{args.seeds}, {node_features}" + (" + the fast-v1 α²F rows" if jarvis else ""))
    by_id = {r.id: r for r in records}
    workdir = Path(tempfile.mkdtemp(prefix="bete-retro-al-"))
    cache: dict[str, object] = {}
    t0 = time.perf_counter()
    trainings = 0

    def ensemble_for(train_ids: list[str], seed: int) -> object:
        nonlocal trainings
        key = hashlib.sha256(json.dumps([sorted(train_ids), seed]).encode()).hexdigest()[:16]
        if key not in cache:
            out = workdir / key
            train_from_records(base_rows + [by_id[i] for i in sorted(train_ids)], out,
                               members=args.members, seed=seed, node_features=node_features,
                               training=TrainConfig(max_epochs=args.epochs,
                                                    schedule="early_stopping", patience=15,
                                                    checkpoint_every=0,
                                                    moment_loss_weight=args.moment_loss_weight),
                               network_options={**TINY, "head": args.head})
            cache[key] = load_ensemble(out)
            trainings += 1
        return cache[key]

    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rng = np.random.default_rng(seed)
        ids = [r.id for r in records]
        initial = sorted(rng.choice(ids, size=args.initial, replace=False).tolist())
        pool0 = [i for i in ids if i not in initial]
        pool_hits0 = sum(i in hits_all for i in pool0)
        for strategy in args.strategies:
            train, pool = list(initial), list(pool0)
            pick_rng = np.random.default_rng(1000 + seed)
            found = 0
            for rnd in range(1, args.rounds + 1):
                if not pool:
                    break
                labels = [i in hits_all for i in pool]
                if strategy == "random":
                    order = pick_rng.permutation(len(pool)).tolist()
                    ap = float(np.mean(labels)) if any(labels) else None
                else:
                    ens = ensemble_for(train, seed)
                    preds = predict_structures([by_id[i].structure for i in pool], ens,
                                               ids=pool)
                    mean = np.array([q.mean["tc_K"] for q in preds])
                    std = np.array([q.std["tc_K"] for q in preds])
                    incumbent = max(tc[i] for i in train)
                    scores = acquisition_scores(mean, std, strategy, kappa=args.kappa,
                                                incumbent=incumbent)
                    order = sorted(range(len(pool)), key=lambda j: (-scores[j], -mean[j], j))
                    ap = average_precision(labels, scores) if any(labels) else None
                picked = [pool[j] for j in order[:args.k]]
                found += sum(i in hits_all for i in picked)
                train += picked
                pool = [i for i in pool if i not in picked]
                n_acq = args.k * rnd
                expected = n_acq * pool_hits0 / len(pool0) if pool0 else 0.0
                results.append({"seed": seed, "strategy": strategy, "round": rnd,
                                "hits": found, "ap": ap, "expected_random_hits": expected,
                                "picked": [by_id[i].formula for i in picked]})
    wall = time.perf_counter() - t0

    print(f"\n{'strategy':<8} {'round':>5} {'hits (mean)':>11} {'AP (mean)':>9} "
          f"{'enrichment':>10}")
    for strategy in args.strategies:
        for rnd in range(1, args.rounds + 1):
            rows = [r for r in results if r["strategy"] == strategy and r["round"] == rnd]
            if not rows:
                continue
            hits = np.mean([r["hits"] for r in rows])
            aps = [r["ap"] for r in rows if r["ap"] is not None]
            exp = np.mean([r["expected_random_hits"] for r in rows])
            enr = hits / exp if exp > 0 else float("nan")
            ap_txt = f"{np.mean(aps):.3f}" if aps else "-"
            print(f"{strategy:<8} {rnd:>5} {hits:>11.2f} {ap_txt:>9} {enr:>10.2f}")
    print(f"\n{trainings} ensembles trained, {wall:.0f} s total"
          + ("" if jarvis else "; 17 records: noise-dominated, see the module docstring"))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results,
                                               "wall_s": wall}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

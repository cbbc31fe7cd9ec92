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

With ``--phonon-store`` (a store of SevenNet-0 phonon documents, ``bete phonons``): the
``mpd`` variant (descriptor species block + MLIP site DOS; rows read only stored documents,
so it trains and is scored on the rows that have one), a second held-out column on the
jarvis-tc test rows that have an MLIP document (every model scored on the same rows), the
gradient-boosted tree with MLIP phonon moments (ω_log-like, ω̄, ω₂, lowest frequency) added,
and the scaled-MLIP-DOS baseline on fast-v1 (α²F ≈ c·F_MLIP(ω), one amplitude c fitted on
the other records, leave-one-out; next to the mean spectrum of the other records).

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
CONFIGS = {  # name: (variant, node features, with the jarvis-tc rows)
    "cso-onehot": ("cso", "onehot_mass", False), "cso-onehot+tc": ("cso", "onehot_mass", True),
    "cso-desc": ("cso", "descriptors", False), "cso-desc+tc": ("cso", "descriptors", True),
    "mpd": ("mpd", "descriptors", False), "mpd+tc": ("mpd", "descriptors", True)}


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

    name, seed, args = task
    variant, node_features, with_tc = CONFIGS[name]
    fast, jtrain, jtest = load_data(args["jarvis"])
    if variant == "mpd":
        fast, jtrain, jtest = (with_stored_dos(x, args["phonon_store"])
                               for x in (fast, jtrain, jtest))
    rows = fast + (jtrain if with_tc else [])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ens = train_from_records(
            rows, Path(tmp) / "ens", members=args["members"], seed=seed,
            node_features=node_features, variant=variant,
            training=TrainConfig(max_epochs=args["epochs"], checkpoint_every=0,
                                 tc_loss_weight=args["tc_loss_weight"],
                                 moment_loss_weight=args["moment_loss_weight"]),
            network_options={"mul": args["mul"], "embed_dim": args["embed_dim"],
                             "head": args["head"]})
        wall = time.perf_counter() - start
        oob = out_of_bag_metrics(ens, fast)
        held, per_row = evaluate_records(ens, jtest)
    return {"config": name, "node_features": node_features, "jarvis_rows": with_tc,
            "seed": seed, "epochs": args["epochs"], "members": args["members"],
            "tc_loss_weight": args["tc_loss_weight"], "head": args["head"],
            "moment_loss_weight": args["moment_loss_weight"],
            "n_train": len(rows),
            "train_s": wall, **oob,
            "jarvis_test_rows": [[r["id"], r["tc_K_true"], r["tc_K_pred"], r["tc_K_baseline"]]
                                 for r in per_row],
            **{f"jarvis_{k}": held[k] for k in ("n", "mae_tc_K", "baseline_mae_tc_K",
                                                 "average_precision_tc5",
                                                 "random_average_precision_tc5")}}


def with_stored_dos(records, store_spec):
    """Records with their stored MLIP site DOS (the others left out)."""
    from stores.config import load_job_store
    from workflows.ml.mlip_dos import with_mlip_site_dos

    store = load_job_store(store_spec, create=False, read_only=True)
    store.connect()
    try:
        return with_mlip_site_dos(records, store, say=print, stored_only=True)
    finally:
        store.close()


def mlip_documents(records, store_spec):
    """id → stored MLIP phonon document (records without one are absent)."""
    from stores.config import load_job_store
    from workflows.ml.mlip_dos import stored_document

    store = load_job_store(store_spec, create=False, read_only=True)
    store.connect()
    try:
        docs = {r.id: stored_document(r.structure, store) for r in records}
    finally:
        store.close()
    return {k: v for k, v in docs.items() if v is not None}


def phonon_moments(doc):
    """ω_log-like, ω̄, ω₂ of the total MLIP DOS (ω > 0) and the lowest frequency (meV)."""
    w, g = np.asarray(doc["frequencies_meV"]), np.clip(np.asarray(doc["total_dos"]), 0, None)
    pos = w > 0.5
    w2 = float(np.sqrt(np.sum(g[pos] * w[pos] ** 2) / np.sum(g[pos])))
    return [doc["mean_log_frequency_meV"], doc["mean_frequency_meV"], w2,
            doc["min_frequency_meV"]]


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


def tree_baseline(jarvis_dir, seeds, docs=None):
    """Gradient-boosted tree on composition descriptors: jarvis test Tc MAE and AP per seed.

    ``docs`` (id → MLIP document): train and test on the rows that have one, with the
    phonon moments as further features.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    from workflows.ml.evaluate import average_precision

    _, train, test = load_data(jarvis_dir)
    xtr, xte = composition_features(train), composition_features(test)
    if docs is not None:
        train = [r for r in train if r.id in docs]
        test = [r for r in test if r.id in docs]
        xtr, xte = (np.hstack([composition_features(rs),
                               np.array([phonon_moments(docs[r.id]) for r in rs])])
                    for rs in (train, test))
    ytr = np.array([r.tc_K for r in train])
    yte = np.array([r.tc_K for r in test])
    out = []
    for seed in seeds:
        model = GradientBoostingRegressor(random_state=seed, n_estimators=300, max_depth=3,
                                          learning_rate=0.05, subsample=0.8)
        pred = model.fit(xtr, ytr).predict(xte)
        out.append({"mae": float(np.mean(np.abs(pred - yte))),
                    "ap": average_precision(yte > 5.0, pred),
                    "constant_mae": float(np.mean(np.abs(np.mean(ytr) - yte))),
                    "n_train": len(train), "n_test": len(test),
                    "test_rows": [[r.id, float(t), float(q)]
                                  for r, t, q in zip(test, yte, pred, strict=True)]})
    return out


def scaled_mlip_baseline(store_spec):
    """fast-v1 leave-one-out: α²F ≈ c·F_MLIP(ω) against the mean of the other spectra.

    Returns MAE of λ, ω_log (K), Tc (K) for both, on the records with an MLIP document.
    """
    from stores.datasets import load_fast_v1
    from workflows.common.physics import superconductivity

    fast = load_fast_v1(None)
    docs = mlip_documents(fast, store_spec)
    rows = [r for r in fast if r.id in docs]
    grid = np.linspace(0.05, 100.0, 2000)
    a2f = np.array([np.interp(grid, r.frequencies_meV, r.a2f, left=0, right=0) for r in rows])
    dos = np.array([np.interp(grid, docs[r.id]["frequencies_meV"],
                              np.clip(docs[r.id]["total_dos"], 0, None), left=0, right=0)
                    / len(r.structure) for r in rows])
    errs = {"scaled_mlip": [], "mean_spectrum": []}
    for j, rec in enumerate(rows):
        others = [i for i in range(len(rows)) if i != j]
        c = np.sum(dos[others] * a2f[others]) / np.sum(dos[others] ** 2)
        truth = superconductivity(rec.frequencies_meV, rec.a2f)
        for key, spec in (("scaled_mlip", c * dos[j]), ("mean_spectrum", a2f[others].mean(0))):
            p = superconductivity(grid, spec)
            errs[key].append([abs(p.lambda_ - truth.lambda_),
                              abs(p.omega_log_K - truth.omega_log_K),
                              abs(p.tc_allen_dynes_K - truth.tc_allen_dynes_K)])
    return {k: dict(zip(("lambda", "omega_log_K", "tc_K"),
                        np.mean(v, axis=0).tolist(), strict=True)) | {"n": len(v)}
            for k, v in errs.items()}


def subset_metrics(test_rows, ids):
    """Tc MAE, baseline MAE, AP(Tc > 5 K), random AP, n of per-row results on ``ids``."""
    from workflows.ml.evaluate import average_precision

    rows = [r for r in test_rows if r[0] in ids]
    t, p, b = (np.array([r[i] for r in rows], dtype=float) for i in (1, 2, 3))
    return {"n": len(rows), "mae": float(np.mean(np.abs(p - t))),
            "base": float(np.mean(np.abs(b - t))), "ap": average_precision(t > 5.0, p),
            "random": float(np.mean(t > 5.0))}


def fmt(values, digits=2):
    """``mean ± std`` of a list (None entries dropped)."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return "n/a"
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def cell(values, base=None, digits=2):
    """``mean ± std (base mean ± std)``."""
    out = fmt(values, digits)
    return out if base is None else f"{out} ({fmt(base, digits)})"


def oob_cell(rs, key, digits=2):
    """Out-of-bag MAE (mean-spectrum baseline[ / in-bag-mean baseline]) over seeds."""
    out = cell([r[f"oob_mae_{key}"] for r in rs], [r[f"oob_baseline_mae_{key}"] for r in rs],
               digits)
    inbag = [r.get(f"oob_inbag_baseline_mae_{key}") for r in rs]
    if all(v is not None for v in inbag):
        out = f"{out[:-1]} / {fmt(inbag, digits)})"
    return out


def table(results, trees, mlip_tree, scaled, subset):
    """The printed table: one line per (config, budget), then the baselines."""
    head = ("model", "budget", "n_oob", "λ MAE (base[ / in-bag])", "ω_log MAE K (base)",
            "Tc MAE K (base)",
            "jarvis Tc MAE K (base)", "AP Tc>5 (random)",
            f"jarvis∩MLIP n={len(subset)}: Tc MAE (base)", "AP (random)")
    lines = [head]
    groups = {}
    for r in results:
        key = (r.get("config") or ("cso-onehot" if r["node_features"] == "onehot_mass"
                                   else "cso-desc") + ("+tc" if r["jarvis_rows"] else ""),
               r.get("members"), r.get("epochs"), r.get("tc_loss_weight"),
               r.get("head", "relu-mean"), r.get("moment_loss_weight", 0.0))
        groups.setdefault(key, []).append(r)
    for (name, members, epochs, weight, head_kind, moment_w), rs in groups.items():
        full = [] if name.startswith("mpd") else rs  # mpd: scored on the MLIP rows only
        sub = [subset_metrics(r["jarvis_test_rows"], subset) for r in rs
               if "jarvis_test_rows" in r and subset]
        lines.append((
            f"{name}{'' if head_kind == 'relu-mean' else ', ' + head_kind} ({len(rs)} seeds)",
            f"{members}×{epochs} w={weight}" + (f" m={moment_w}" if moment_w else ""),
            fmt([r["n_oob"] for r in rs], 1),
            oob_cell(rs, "lambda"), oob_cell(rs, "omega_log_K", 0), oob_cell(rs, "tc_K"),
            cell([r["jarvis_mae_tc_K"] for r in full],
                 [r["jarvis_baseline_mae_tc_K"] for r in full]) if full else "-",
            cell([r["jarvis_average_precision_tc5"] for r in full],
                 [r["jarvis_random_average_precision_tc5"] for r in full], 3) if full else "-",
            cell([m["mae"] for m in sub], [m["base"] for m in sub]) if sub else "-",
            cell([m["ap"] for m in sub], [m["random"] for m in sub], 3) if sub else "-"))
    tree_sub = [subset_metrics([[i, t, q, 0.0] for i, t, q in tr["test_rows"]], subset)
                for tr in trees] if subset else []
    lines.append(("gradient-boosted tree (composition; +tc rows)", "sklearn", "-", "-", "-", "-",
                  f"{fmt([t['mae'] for t in trees])} ({fmt([t['constant_mae'] for t in trees])}"
                  " const)", fmt([t["ap"] for t in trees], 3),
                  fmt([m["mae"] for m in tree_sub]) if tree_sub else "-",
                  fmt([m["ap"] for m in tree_sub], 3) if tree_sub else "-"))
    if mlip_tree:
        t0 = mlip_tree[0]
        lines.append((f"tree (composition + MLIP moments; {t0['n_train']} train rows)",
                      "sklearn", "-", "-", "-", "-", "-", "-",
                      f"{fmt([t['mae'] for t in mlip_tree])} (n={t0['n_test']})",
                      fmt([t["ap"] for t in mlip_tree], 3)))
    if scaled:
        for key, label in (("scaled_mlip", "scaled-MLIP-DOS baseline (LOO)"),
                           ("mean_spectrum", "mean spectrum of the others (LOO)")):
            v = scaled[key]
            lines.append((label, "-", str(v["n"]), f"{v['lambda']:.2f}",
                          f"{v['omega_log_K']:.0f}", f"{v['tc_K']:.2f}", "-", "-", "-", "-"))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main(argv=None):
    """Run the grid and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jarvis", default=str(JARVIS), help="jarvis-tc folder")
    p.add_argument("--configs", nargs="+", choices=tuple(CONFIGS),
                   default=[c for c in CONFIGS if not c.startswith("mpd")],
                   help="rows to train (mpd needs --phonon-store)")
    p.add_argument("--phonon-store", help="store of SevenNet-0 phonon documents (bete phonons)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--mul", type=int, default=8)
    p.add_argument("--embed-dim", type=int, default=32)
    p.add_argument("--tc-loss-weight", type=float, default=0.01)
    p.add_argument("--head", choices=("relu-mean", "anchored"), default="relu-mean",
                   help="output head (NetworkConfig.head)")
    p.add_argument("--moment-loss-weight", type=float, default=0.0,
                   help="TrainConfig.moment_loss_weight (loss on λ and ln ω_log)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed … +seeds-1")
    p.add_argument("--json", help="also write every result here (updated as tasks finish)")
    p.add_argument("--table-from", nargs="+", metavar="JSON",
                   help="print the table from earlier --json files (no training)")
    args = p.parse_args(argv)
    if any(c.startswith("mpd") for c in args.configs) and not args.phonon_store:
        p.error("the mpd rows need --phonon-store")
    opts = {"jarvis": args.jarvis, "members": args.members, "epochs": args.epochs,
            "mul": args.mul, "embed_dim": args.embed_dim, "tc_loss_weight": args.tc_loss_weight,
            "phonon_store": args.phonon_store, "head": args.head,
            "moment_loss_weight": args.moment_loss_weight}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    # the slow tasks (with the jarvis rows) first, so the pool ends together
    tasks = [(c, seed, opts) for c in sorted(args.configs, key=lambda c: not c.endswith("+tc"))
             for seed in seeds]
    start = time.perf_counter()
    results = []
    if args.table_from:
        saved = [json.loads(Path(f).read_text()) for f in args.table_from]
        for d in saved:
            for r in d["results"]:
                r.setdefault("members", d["args"]["members"])
                r.setdefault("epochs", d["args"]["epochs"])
                r.setdefault("tc_loss_weight", d["args"]["tc_loss_weight"])
                r.setdefault("head", d["args"].get("head", "relu-mean"))
                r.setdefault("moment_loss_weight", d["args"].get("moment_loss_weight", 0.0))
                results.append(r)
        seeds = sorted({r["seed"] for r in results})
        tasks = []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(run_one, t) for t in tasks]):
            results.append(fut.result())
            print("done:", json.dumps({k: v for k, v in results[-1].items()
                                       if k != "jarvis_test_rows"}), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"args": vars(args),
                                                       "results": results}, indent=1))
    trees = tree_baseline(args.jarvis, seeds)
    mlip_tree, scaled, subset = None, None, set()
    if args.phonon_store:
        mpd = [r for r in results if str(r.get("config", "")).startswith("mpd")]
        _, train, test = load_data(args.jarvis)
        if mpd:  # the rows the mpd models were scored on (documents added later do not count)
            subset = set.intersection(*({row[0] for row in r["jarvis_test_rows"]} for r in mpd))
        else:
            subset = set(mlip_documents(test, args.phonon_store))
        docs = mlip_documents(train + [r for r in test if r.id in subset], args.phonon_store)
        if sum(r.id in docs for r in train) >= 20:  # the tree needs training rows with documents
            mlip_tree = tree_baseline(args.jarvis, seeds, docs)
        scaled = scaled_mlip_baseline(args.phonon_store)
    print(f"seeds {seeds}; mul={args.mul}, embed_dim={args.embed_dim}; "
          f"{time.perf_counter() - start:.0f} s")
    table(results, trees, mlip_tree, scaled, subset)
    if args.json and not args.table_from:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results,
                                               "tree": trees, "mlip_tree": mlip_tree,
                                               "scaled_mlip": scaled}, indent=1))


if __name__ == "__main__":
    main()

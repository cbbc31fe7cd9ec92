"""Model accuracy against honest baselines on four splits: which configuration earns its place.

Rows (``--configs``, each retrained per split and model seed; ``--set KEY=VALUE`` overrides a
field of every listed configuration, see :data:`CONFIGS`) beside baselines computed here:

- ``mean spectrum``: the mean α²F of the training records (on a 0.1 meV grid), for every row;
- ``tree, composition``: scikit-learn ``HistGradientBoostingRegressor`` on composition
  features (Z, mass, electronegativity, row, group, radius, is-transition-metal; fraction-
  weighted mean, min, max), target ln(1 + Tc) (λ, ln ω_log on fast-v1);
- ``tree, <potential> pooled``: the same tree on the mean, max and min over the atoms of the
  potential's last-layer atom features (one per potential with stored feature documents);
- ``tree, composition + MLIP moments``: composition + ω_log-like, ω̄, ω₂ and the lowest
  frequency of the SevenNet-0 phonon DOS.

Splits (``--splits``):

- ``jarvis``: trained on every stable fast-v1 record + the training side (397 rows) of the
  seeded jarvis-tc split (seed 0, fraction 0.2, as ``bete evaluate --split test``), scored on
  the 99 test rows (Tc MAE, AP(Tc > 5 K)); the same run gives the fast-v1 **out-of-bag**
  scores (each record predicted by the members that left it out; the mean spectrum and the
  trees leave it out too: mean of the others, 5-fold out-of-fold trees);
- ``chemsys``: fast-v1 split by chemical system (test ≥ 25 % of the records, split seed = the
  model seed), the jarvis training rows added to training;
- ``prospective``: trained on the records the first default ensemble saw (the stable
  fast-v1 records at commit bbd968d, listed in its ``ensemble.json``) + jarvis training rows,
  scored on the stable records added since.

Every cell is mean ± spread over the model seeds; coverage is the share of test truths within
the calibrated 1σ. Rows are scored on the ids every compared model could take (a ``dos`` head
needs a phonon DOS: bcc Cs has none), ``n`` says how many.

MLIP inputs (atom features, phonon DOS) come only from documents already in ``--mlip-store``
(``bete phonons`` / :func:`workflows.mlip.features.feature_documents` fill it).

Usage::

    python benchmarks/model_accuracy.py --configs default-recipe l3i5-tc --seeds 3 \\
        --members 10 --epochs 60 --mlip-store STORE --json out.json
    python benchmarks/model_accuracy.py --table-from out.json more.json --mlip-store STORE
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
PREVIOUS_DEFAULT = ROOT / "betenet_model" / "pretrained" / "fast-v1-jarvis-cso"
SPLITS = ("jarvis", "chemsys", "prospective")
QUANTITIES = ("lambda", "omega_log_K", "tc_K")
BASE = {"variant": "cso", "node_features": "descriptors", "head": "anchored", "out_dim": 51,
        "tc_head": False, "tc_head_weight": 0.0, "tc_loss_weight": 0.001,
        "moment_loss_weight": 0.01, "mul": 8, "embed_dim": 32, "jarvis_rows": True,
        "smoothing_window": 101}
G126 = {"out_dim": 126, "smoothing_window": 31}   # to 250 meV, 3 meV smoothing
FOUNDATION = {"node_features": "sevennet_l3i5", "moment_loss_weight": 0.3,
              "tc_loss_weight": 0.05, "tc_head": True, "tc_head_weight": 0.3, **G126}
CONFIGS = {
    # the recipe of the first default ensemble (fast-v1-jarvis-cso)
    "default-recipe": {},
    # SevenNet-l3i5 atom features, 250 meV grid, λ/ω_log loss 0.3, Tc loss 0.05, Tc head 0.3
    "foundation": FOUNDATION,
    "foundation-nohead": {**FOUNDATION, "tc_head": False, "tc_head_weight": 0.0},
    "foundation-desc": {**FOUNDATION, "node_features": "descriptors"},
    "foundation-s0": {**FOUNDATION, "node_features": "sevennet_0"},
    "foundation-mf0": {**FOUNDATION, "node_features": "sevennet_mf_0"},
    "foundation-dos": {**FOUNDATION, "head": "dos"},
}


# --------------------------------------------------------------------------- data
def load_data(jarvis_dir):
    """Stable fast-v1 records, jarvis-tc train and test rows (split seed 0, 20 %)."""
    from stores.datasets import load_fast_v1, load_records, split_records

    fast = load_fast_v1(None)
    jarvis = load_records(jarvis_dir, report=lambda _m: None)
    train, test = split_records(jarvis, 0.2, seed=0)
    return fast, train, test


def previous_default_ids():
    """Ids of the fast-v1 records the first default ensemble was trained on."""
    manifest = json.loads((PREVIOUS_DEFAULT / "ensemble.json").read_text())
    return set(manifest["training_set"]["ids"])


def fast_split(fast, split, seed):
    """Training and test fast-v1 records of a split (``jarvis``: all, none)."""
    from stores.datasets import grouped_split

    if split == "jarvis":
        return list(fast), []
    if split == "chemsys":
        return grouped_split(fast, "chemsys", 0.25, seed)
    seen = previous_default_ids()
    return [r for r in fast if r.id in seen], [r for r in fast if r.id not in seen]


def open_store(spec):
    from stores.config import load_job_store

    store = load_job_store(spec, create=False, read_only=True)
    store.connect()
    return store


# --------------------------------------------------------------------------- one model
def run_one(task):
    """Train one configuration on one split and seed; per-row predictions of its test rows."""
    import torch

    torch.set_num_threads(1)
    from betenet_model.training import TrainConfig
    from workflows.ml.evaluate import evaluate_records, out_of_bag_predictions
    from workflows.ml.train import train_from_records

    name, cfg, split, seed, args = task
    fast, jtrain, jtest = load_data(args["jarvis"])
    train_fast, test_fast = fast_split(fast, split, seed)
    rows = train_fast + (jtrain if cfg["jarvis_rows"] else [])
    store = open_store(args["mlip_store"]) if args["mlip_store"] else None
    log = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            ens = train_from_records(
                rows, Path(tmp) / "ens", members=args["members"], seed=seed,
                node_features=cfg["node_features"], variant=cfg["variant"],
                training=TrainConfig(max_epochs=args["epochs"], checkpoint_every=0,
                                     tc_loss_weight=cfg["tc_loss_weight"],
                                     moment_loss_weight=cfg["moment_loss_weight"],
                                     tc_head_weight=cfg["tc_head_weight"]),
                network_options={"mul": cfg["mul"], "embed_dim": cfg["embed_dim"],
                                 "head": cfg["head"], "out_dim": cfg["out_dim"],
                                 "tc_head": cfg["tc_head"]},
                smoothing_window=cfg["smoothing_window"],
                mlip_store=store, stored_only=True, say=log.append)
            wall = time.perf_counter() - start
            out = {"config": name, "settings": cfg, "split": split, "seed": seed,
                   "members": args["members"], "epochs": args["epochs"], "train_s": wall,
                   "n_train": len(ens.manifest["training_set"]["ids"]),
                   "calibration": ens.manifest.get("calibration"), "log": log}
            test = jtest if split == "jarvis" else test_fast
            _, per_row = evaluate_records(ens, test, mlip_store=store, stored_only=True,
                                          say=log.append)
            out["test_rows"] = [{"id": r["id"], **{f"{k}_{x}": r[f"{k}_{x}"]
                                                   for k in QUANTITIES
                                                   for x in ("true", "pred", "std")},
                                 "tc_head_K_pred": r.get("tc_head_K_pred"),
                                 "tc_head_K_std": r.get("tc_head_K_std")}
                                for r in per_row]
            if split == "jarvis":
                scale = (ens.manifest.get("calibration") or {}).get("sigma_scale", {})
                oob = out_of_bag_predictions(ens, train_fast, mlip_store=store,
                                             stored_only=True)
                out["oob_rows"] = [
                    {"id": r["id"], **{f"{k}_{x}": r[k][y] for k in QUANTITIES
                                       for x, y in (("true", "true"), ("pred", "pred"))},
                     **{f"{k}_std": (None if r[k]["spread"] is None
                                     else scale.get(k, 1.0) * r[k]["spread"])
                        for k in QUANTITIES},
                     "tc_head_K_pred": (r.get("tc_head_K") or {}).get("pred"),
                     "tc_head_K_std": (None if (r.get("tc_head_K") or {}).get("spread") is None
                                       else scale.get("tc_head_K", 1.0)
                                       * r["tc_head_K"]["spread"])}
                    for r in oob]
    finally:
        if store is not None:
            store.close()
    return out


# --------------------------------------------------------------------------- baselines
def comp_features(structure):
    """Fraction-weighted mean, min and max of seven element properties."""
    from pymatgen.core import Element

    comp = structure.composition.fractional_composition
    rows = []
    for el in comp.elements:
        e = Element(el.symbol)
        x = e.X if e.X == e.X else 1.5       # noble gases have no Pauling X
        rows.append([e.Z, float(e.atomic_mass), x, e.row, e.group,
                     float(e.atomic_radius or 1.5), float(e.is_transition_metal)])
    d = np.array(rows, dtype=float)
    frac = np.array([comp[el] for el in comp.elements])
    return np.concatenate([(frac[:, None] * d).sum(axis=0), d.min(axis=0), d.max(axis=0)])


def stored_docs(records, store_spec, potential=None):
    """id → stored feature document of ``potential`` (or MLIP phonon document when None)."""
    from stores.mlip_phonons import find_mlip_phonons
    from stores.schemas import MLIP_FEATURES_DOC_TYPE, MLIP_PHONON_DOC_TYPE
    from workflows.mlip.features import feature_key
    from workflows.mlip.flows import MLIPPhononMaker

    store = open_store(store_spec)
    try:
        if potential is None:
            maker = MLIPPhononMaker()
            keys = {r.id: maker.key(r.structure) for r in records}
            found = find_mlip_phonons(store, set(keys.values()), MLIP_PHONON_DOC_TYPE)
        else:
            keys = {r.id: feature_key(r.structure, potential) for r in records}
            found = find_mlip_phonons(store, set(keys.values()), MLIP_FEATURES_DOC_TYPE)
    finally:
        store.close()
    return {i: found[k] for i, k in keys.items() if k in found}


def phonon_moments(doc):
    """ω_log-like, ω̄, ω₂ of the total MLIP DOS (ω > 0.5 meV) and the lowest frequency (meV)."""
    w, g = np.asarray(doc["frequencies_meV"]), np.clip(np.asarray(doc["total_dos"]), 0, None)
    pos = w > 0.5
    w2 = float(np.sqrt(np.sum(g[pos] * w[pos] ** 2) / np.sum(g[pos])))
    return [doc["mean_log_frequency_meV"], doc["mean_frequency_meV"], w2,
            doc["min_frequency_meV"]]


def feature_sets(records, store_spec):
    """name → {id: feature vector} for the tree baselines (only rows that have them)."""
    sets = {"composition": {r.id: comp_features(r.structure) for r in records}}
    if not store_spec:
        return sets
    from betenet_model.features import FOUNDATION_FEATURES

    for mode in FOUNDATION_FEATURES:
        pot = mode.replace("_", "-")
        docs = stored_docs(records, store_spec, pot)
        if docs:
            sets[f"{pot} pooled"] = {
                i: np.concatenate([x.mean(0), x.max(0), x.min(0)])
                for i, d in docs.items() if (x := np.asarray(d["atom_features"])) is not None}
    phonons = stored_docs(records, store_spec)
    if phonons:
        sets["composition + MLIP moments"] = {
            r.id: np.r_[comp_features(r.structure), phonon_moments(phonons[r.id])]
            for r in records if r.id in phonons}
    return sets


def truth(record):
    """λ, ω_log (K), Tc (K) of a record (Tc label for a Tc-only row)."""
    from workflows.common.physics import superconductivity

    if not record.has_spectrum:
        return {"tc_K": float(record.tc_K)}
    sc = superconductivity(record.frequencies_meV, record.a2f)
    return {"lambda": sc.lambda_, "omega_log_K": sc.omega_log_K, "tc_K": sc.tc_allen_dynes_K}


def mean_spectrum_props(records):
    """λ, ω_log, Tc of the mean α²F of ``records`` (0.1 meV grid up to the highest record)."""
    from workflows.common.physics import superconductivity

    top = max(float(r.frequencies_meV[-1]) for r in records)
    grid = np.arange(0.05, top + 0.1, 0.1)
    mean = np.mean([np.interp(grid, r.frequencies_meV, r.a2f, left=0, right=0)
                    for r in records], axis=0)
    sc = superconductivity(grid, mean)
    return {"lambda": sc.lambda_, "omega_log_K": sc.omega_log_K, "tc_K": sc.tc_allen_dynes_K}


def tree_predict(xtr, ytr, xte, seed, key):
    from sklearn.ensemble import HistGradientBoostingRegressor

    leaf = max(3, min(20, len(ytr) // 15))     # sklearn's 20 leaves 35 rows one split
    model = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, random_state=seed,
                                          min_samples_leaf=leaf)
    if key == "tc_K":
        return np.expm1(model.fit(xtr, np.log1p(ytr)).predict(xte)).clip(0)
    if key == "omega_log_K":
        return np.exp(model.fit(xtr, np.log(ytr)).predict(xte))
    return model.fit(xtr, ytr).predict(xte)


def baseline_rows(split, seed, data, sets):
    """name → per-row predictions ``{"test_rows": [...], ["oob_rows": [...]]}`` of the
    mean spectrum and every tree, for one split and seed."""
    from sklearn.model_selection import KFold

    fast, jtrain, jtest = data
    train_fast, test_fast = fast_split(fast, split, seed)
    out = {}

    def rows_of(records, preds):
        return [{"id": r.id, **{f"{k}_true": truth(r).get(k) for k in QUANTITIES},
                 **{f"{k}_pred": p.get(k) for k in QUANTITIES},
                 **{f"{k}_std": None for k in QUANTITIES}}
                for r, p in zip(records, preds, strict=True)]

    if split == "jarvis":
        base = mean_spectrum_props(train_fast)
        out["mean spectrum"] = {"test_rows": rows_of(jtest, [base] * len(jtest))}
        loo = [mean_spectrum_props([o for o in train_fast if o.id != r.id])
               for r in train_fast]
        out["mean spectrum"]["oob_rows"] = rows_of(train_fast, loo)
        for name, feats in sets.items():
            tr = [r for r in jtrain if r.id in feats]
            te = [r for r in jtest if r.id in feats]
            if len(tr) < 20 or not te:
                continue
            pred = tree_predict(np.array([feats[r.id] for r in tr]),
                                np.array([r.tc_K for r in tr]),
                                np.array([feats[r.id] for r in te]), seed, "tc_K")
            entry = {"test_rows": rows_of(te, [{"tc_K": float(p)} for p in pred])}
            have = [r for r in train_fast if r.id in feats]
            oof = [{} for _ in have]
            x = np.array([feats[r.id] for r in have])
            for tr_i, te_i in KFold(5, shuffle=True, random_state=seed).split(x):
                for k in QUANTITIES:
                    y = np.array([truth(have[i])[k] for i in tr_i])
                    for i, p in zip(te_i, tree_predict(x[tr_i], y, x[te_i], seed, k),
                                    strict=True):
                        oof[i][k] = float(p)
            entry["oob_rows"] = rows_of(have, oof)
            out[f"tree, {name}"] = entry
        return out
    base = mean_spectrum_props(train_fast)
    out["mean spectrum"] = {"test_rows": rows_of(test_fast, [base] * len(test_fast))}
    for name, feats in sets.items():
        tr = [r for r in train_fast if r.id in feats]
        te = [r for r in test_fast if r.id in feats]
        if len(tr) < 10 or not te:
            continue
        preds = [{} for _ in te]
        for k in QUANTITIES:
            for p, v in zip(preds, tree_predict(np.array([feats[r.id] for r in tr]),
                                                np.array([truth(r)[k] for r in tr]),
                                                np.array([feats[r.id] for r in te]), seed, k),
                            strict=True):
                p[k] = float(v)
        out[f"tree, {name}"] = {"test_rows": rows_of(te, preds)}
    return out


# --------------------------------------------------------------------------- table
def scores(rows, ids, key):
    """MAE, AP(Tc > 5 K) and 1σ coverage of ``key`` on the rows whose id is in ``ids``
    (``tc_head_K``: the direct Tc of a model with a Tc head)."""
    from workflows.ml.evaluate import average_precision

    if key == "tc_head_K":
        rows = [{**r, "tc_head_K_true": r.get("tc_K_true")} for r in rows]
    use = [r for r in rows if r["id"] in ids and r.get(f"{key}_true") is not None
           and r.get(f"{key}_pred") is not None]
    if not use:
        return None
    t = np.array([r[f"{key}_true"] for r in use])
    p = np.array([r[f"{key}_pred"] for r in use])
    out = {"n": len(use), "mae": float(np.mean(np.abs(p - t)))}
    if key == "tc_K":
        out["ap"] = average_precision(t > 5.0, p)
        out["random"] = float(np.mean(t > 5.0))
    with_std = [(abs(r[f"{key}_pred"] - r[f"{key}_true"]), r[f"{key}_std"]) for r in use
                if r.get(f"{key}_std") is not None]
    if with_std:
        out["coverage"] = float(np.mean([e <= s for e, s in with_std]))
    return out


def fmt(values, digits=2):
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return "–"
    return f"{v.mean():.{digits}f}" if v.size == 1 or v.std() == 0 else \
        f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def label(result):
    """Row name of a trained result: config name and the budget."""
    return f"{result['config']} ({result['members']}×{result['epochs']})"


def common_ids(entries):
    """Per seed, the ids every trained model and the mean spectrum of that seed scored.

    ``entries``: row name → {seed: rows}. A split that moves with the seed (chemsys) has other
    test rows per seed, so ids are intersected across models within a seed, never across
    seeds; trees are left out (they score every row).
    """
    seeds = {seed for per_seed in entries.values() for seed in per_seed}
    out = {}
    for seed in seeds:
        sets = [{row["id"] for row in per_seed[seed]} for name, per_seed in entries.items()
                if not name.startswith("tree") and seed in per_seed]
        out[seed] = set.intersection(*sets) if sets else set()
    return out


def table(results, baselines, splits):
    """Markdown tables, one per split (jarvis also gives the out-of-bag table).

    Each cell scores a model per seed on that seed's common ids (:func:`common_ids`), then
    gives mean ± spread over seeds.
    """
    lines = []
    groups = {}
    for r in results:
        groups.setdefault((r["split"], label(r)), []).append(r)
    parts = []
    for split in splits:
        for where in (("test_rows", "oob_rows") if split == "jarvis" else ("test_rows",)):
            entries = {lab: {r["seed"]: r[where] for r in rs if where in r}
                       for (s, lab), rs in groups.items() if s == split}
            for name, per_seed in baselines.get(split, {}).items():
                entries[name] = {b["seed"]: b[where] for b in per_seed if where in b}
            entries = {k: v for k, v in entries.items() if v}
            if not entries:
                continue
            parts.append((split, where, entries, common_ids(entries)))
    for split, where, entries, ids in parts:
        title = {"test_rows": {"jarvis": "held-out jarvis-tc (99 rows, split seed 0)",
                               "chemsys": "fast-v1, chemical-system split (split seed = "
                                          "model seed)",
                               "prospective": "fast-v1 prospective: trained on the bbd968d "
                                              "records, scored on those added since"}[split],
                 "oob_rows": "fast-v1 out of bag (trees: 5-fold out-of-fold; mean spectrum: "
                             "of the other records)"}[where]
        keys = ("tc_K",) if split == "jarvis" and where == "test_rows" else QUANTITIES
        if any(row.get("tc_head_K_pred") is not None
               for per_seed in entries.values() for rows in per_seed.values() for row in rows):
            keys = (*keys, "tc_head_K")
        head = ["model", "n"]
        names = {"lambda": "λ", "omega_log_K": "ω_log K", "tc_K": "Tc K",
                 "tc_head_K": "Tc head K"}
        for k in keys:
            head += [f"{names[k]} MAE"] + (["AP Tc>5 (random)"] if k == "tc_K" else []) + (
                [f"{names[k]} 1σ cover"] if k in ("lambda", "tc_K") else [])
        lines += [f"\n### {title}", "", "| " + " | ".join(head) + " |",
                  "|" + " --- |" * len(head)]
        for name, per_seed in entries.items():
            cells = [name]
            ns = []
            for k in keys:
                sc = [scores(rows, ids.get(seed, set()), k) for seed, rows in per_seed.items()]
                sc = [s for s in sc if s]
                ns += [s["n"] for s in sc]
                cells.append(fmt([s["mae"] for s in sc], 3 if k != "omega_log_K" else 1))
                if k == "tc_K":
                    cells.append(f"{fmt([s.get('ap') for s in sc], 3)} "
                                 f"({fmt([s.get('random') for s in sc], 3)})")
                if k in ("lambda", "tc_K"):
                    cells.append(fmt([s.get("coverage") for s in sc], 2))
            cells.insert(1, str(min(ns)) if ns else "0")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_set(items):
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        if key not in BASE:
            raise SystemExit(f"--set {key}: not a configuration field ({', '.join(BASE)})")
        try:
            out[key] = json.loads(value)      # numbers, true/false
        except json.JSONDecodeError:
            out[key] = value                  # names such as sevennet_l3i5
    return out


def all_baselines(splits, seeds, args):
    """Mean spectrum and tree rows per split and seed (``--baselines-cache``: read from /
    written to that JSON file, so reprinting a table does not refit every tree)."""
    cache = Path(args.baselines_cache) if args.baselines_cache else None
    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    missing = [(split, seed) for split in splits for seed in seeds
               if f"{split} {seed}" not in stored]
    if missing:
        data = load_data(args.jarvis)
        fast, jtrain, jtest = data
        sets = feature_sets(fast + jtrain + jtest, args.mlip_store)
        for split, seed in missing:
            stored[f"{split} {seed}"] = baseline_rows(split, seed, data, sets)
        if cache:
            cache.write_text(json.dumps(stored, default=float))
    baselines = {split: {} for split in splits}
    for split in splits:
        for seed in seeds:
            for name, entry in stored[f"{split} {seed}"].items():
                baselines[split].setdefault(name, []).append({**entry, "seed": seed})
    return baselines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jarvis", default=str(JARVIS), help="jarvis-tc folder")
    p.add_argument("--configs", nargs="*", default=["default-recipe"], choices=tuple(CONFIGS))
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                   help="override a configuration field of every --configs entry")
    p.add_argument("--name", help="row-name suffix for --set runs")
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    p.add_argument("--mlip-store", help="store holding the MLIP feature and phonon documents")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write every result here (updated as tasks finish)")
    p.add_argument("--table-from", nargs="+", metavar="JSON",
                   help="print the tables from earlier --json files (no training)")
    p.add_argument("--markdown", help="also write the tables to this file")
    p.add_argument("--baselines-cache", metavar="JSON",
                   help="keep the baseline rows (mean spectrum, trees) in this file and reuse "
                        "them (they depend on the split and seed only)")
    p.add_argument("--no-baselines", action="store_true",
                   help="only the trained rows (quicker, for screening configurations)")
    args = p.parse_args(argv)
    overrides = parse_set(args.set)
    opts = {"jarvis": args.jarvis, "members": args.members, "epochs": args.epochs,
            "mlip_store": args.mlip_store}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results = []
    tasks = []
    if args.table_from:
        for f in args.table_from:
            results += json.loads(Path(f).read_text())["results"]
        seeds = sorted({r["seed"] for r in results})
        splits = [s for s in SPLITS if any(r["split"] == s for r in results)]
    else:
        splits = args.splits
        for name in args.configs:
            cfg = {**BASE, **CONFIGS[name], **overrides}
            row = name + (f" {args.name}" if args.name else "")
            tasks += [(row, cfg, split, seed, opts) for seed in seeds for split in splits]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(run_one, t) for t in tasks]):
            results.append(fut.result())
            r = results[-1]
            print(f"done: {r['config']} {r['split']} seed {r['seed']} in {r['train_s']:.0f} s",
                  flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"args": vars(args),
                                                       "results": results}, indent=1))
    baselines = {} if args.no_baselines else all_baselines(splits, seeds, args)
    text = table(results, baselines, splits)
    print(f"seeds {seeds}; {time.perf_counter() - start:.0f} s")
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json and not args.table_from:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results},
                                              indent=1))


if __name__ == "__main__":
    main()

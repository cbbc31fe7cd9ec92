"""MLIP phonons: cost per structure, agreement with the DFPT phonon DOS, stability confusion.

    nice -n 5 python benchmarks/mlip_phonons.py timing     # 1, 2, 4, 8-atom cells, each potential
    nice -n 5 python benchmarks/mlip_phonons.py agreement  # fast-v1 DFPT records, each potential
    nice -n 5 python benchmarks/mlip_phonons.py agreement --dfpt-store S   # + a campaign's verdicts
    nice -n 5 python benchmarks/mlip_phonons.py sample --n 80 --workers 2   # cost of all cells
    nice -n 5 python benchmarks/mlip_phonons.py displacements --n 60  # one-way + residual vs ±

``agreement`` compares the log-average frequency exp(⟨ln ω⟩_DOS, ω > 0) of the MLIP DOS with
that of the DFPT phonon DOS of every fast-v1 record (the shared folder and the packaged copy,
by id), prints Pearson r, the mean MLIP/DFPT ratio and the MAE, then the confusion matrix of the
stability verdict (DFPT unstable = ``min_frequency_meV`` < −0.5 meV) for a range of MLIP
thresholds.  ``sample`` times a random sample stratified by atom count of
``../shared/structures/bete-net`` (the reserved evaluation cells 107, 305, 610, 689 are never
computed) in ``--workers`` processes of one thread each and extrapolates to every cell.
``displacements`` computes a random sample twice in one process, alternating which goes first:
phonopy's ± displacements against one-way displacements with the residual forces of the
undisplaced supercell subtracted (``residual_forces``, the default), and prints the CPU ratio
and the change of the spectra.
Times are wall and CPU seconds of the calculation (model loading is reported once, apart).
The cost of all 802 cells, measured with ``bete phonons --workers 2`` on 2 Dec 2026 (3344
CPU s, 27.9 min on 2 cores, 28 min 16 s wall), is in ``benchmarks/results/mlip_phonons_cost.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
BETE_NET = SHARED / "structures" / "bete-net"
FAST_V1 = [SHARED / "datasets" / "fast-v1", REPO / "stores" / "data" / "fast-v1"]
RESERVED = {107, 305, 610, 689}
POTENTIALS = ("sevennet-0", "chgnet")
DFPT_UNSTABLE_MEV = -0.5


def log_average(w: np.ndarray, dos: np.ndarray) -> float:
    """exp of the DOS-weighted mean of ln ω over ω > 0."""
    pos = w > 0
    return float(np.exp(np.sum(dos[pos] * np.log(w[pos])) / np.sum(dos[pos])))


def cells(ids: list[int]) -> list[tuple[int, object]]:
    from pymatgen.core import Structure

    return [(i, Structure.from_file(BETE_NET / f"{i}.cif")) for i in ids if i not in RESERVED]


def compute(args: tuple[object, str]) -> dict:
    """One calculation, timed (wall and CPU of this process), model already loaded or not."""
    from workflows.mlip.flows import MLIPPhononMaker
    from workflows.mlip.phonons import compute_mlip_phonons
    from workflows.mlip.potentials import get_potential

    structure, potential = args
    t0 = time.perf_counter()
    get_potential(potential).calculator()
    load = time.perf_counter() - t0
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        doc = compute_mlip_phonons(structure, MLIPPhononMaker(potential=potential))
        out = {"min": doc.min_frequency_meV, "wlog": doc.mean_log_frequency_meV, "error": None,
               "supercell_atoms": doc.n_supercell_atoms}
    except ValueError as exc:
        out = {"error": str(exc)}
    return {**out, "wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0,
            "load_s": load, "nsites": len(structure)}


def timing(_args: argparse.Namespace) -> None:
    from pymatgen.core import Structure

    by_n: dict[int, int] = {}
    for p in sorted(BETE_NET.glob("*.cif"), key=lambda p: int(p.stem)):
        n = len(Structure.from_file(p))
        if n in (1, 2, 4, 8) and n not in by_n and int(p.stem) not in RESERVED and p.stem != "0":
            by_n[n] = int(p.stem)
    print("| potential | atoms | cell | supercell atoms | wall s | CPU s |")
    print("|---|---|---|---|---|---|")
    for pot in POTENTIALS:
        for n, (i, s) in zip(sorted(by_n), cells([by_n[n] for n in sorted(by_n)]), strict=True):
            r = compute((s, pot))
            print(f"| {pot} | {n} | {i} {s.composition.reduced_formula} | "
                  f"{r.get('supercell_atoms', r['error'])} | "
                  f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} |", flush=True)
        print(f"| {pot} | model load | | | {r['load_s']:.1f} (first call) | |")


def records() -> dict[int, dict]:
    out: dict[int, dict] = {}
    for d in FAST_V1:
        for p in sorted(d.glob("*.json")):
            rec = json.loads(p.read_text())
            if rec.get("status") == "ok" and rec.get("phdos_total"):
                out[int(rec["id"])] = rec
    return out


def agreement(args: argparse.Namespace) -> None:
    from pymatgen.core import Structure

    from stores.config import load_job_store
    from workflows.mlip.phonons import mlip_phonon_document

    recs = records()
    store = load_job_store(args.store, create=True)
    store.connect()
    rows = defaultdict(list)
    for pot in POTENTIALS:
        for i, rec in sorted(recs.items()):
            s = Structure.from_dict(rec["structure"])
            w = np.asarray(rec["phdos_frequency_meV"])
            dfpt = log_average(w, np.asarray(rec["phdos_total"]))
            try:
                doc = mlip_phonon_document(s, pot, store, source_id=str(i))
                rows[pot].append((i, rec["formula"], dfpt, rec["min_frequency_meV"],
                                  doc["mean_log_frequency_meV"], doc["min_frequency_meV"]))
            except ValueError as exc:
                print(f"{pot} {i} {rec['formula']}: {exc}", flush=True)
                rows[pot].append((i, rec["formula"], dfpt, rec["min_frequency_meV"], None, None))
    for pot in POTENTIALS:
        for sid, formula, s, dfpt_min in dfpt_store_verdicts(args.dfpt_store):
            try:
                doc = mlip_phonon_document(s, pot, store, source_id=sid)
                rows[pot].append((sid, formula, None, dfpt_min, doc["mean_log_frequency_meV"],
                                  doc["min_frequency_meV"]))
            except ValueError as exc:
                print(f"{pot} {sid} {formula}: {exc}", flush=True)
                rows[pot].append((sid, formula, None, dfpt_min, None, None))
    store.close()
    print("\n| potential | n | Pearson r | mean ratio MLIP/DFPT | MAE (meV) "
          "| MAE after ratio (meV) |")
    print("|---|---|---|---|---|---|")
    for pot, rs in rows.items():
        ok = [r for r in rs if r[4] is not None and r[2] is not None]  # fast-v1: a DFPT DOS
        d, m = np.array([r[2] for r in ok]), np.array([r[4] for r in ok])
        ratio = float(np.mean(m / d))
        print(f"| {pot} | {len(ok)} | {np.corrcoef(d, m)[0, 1]:.3f} | {ratio:.3f} | "
              f"{np.mean(np.abs(m - d)):.2f} | {np.mean(np.abs(m / ratio - d)):.2f} |")
    print("\n| id | formula | DFPT log-avg (meV) | DFPT min (meV) | "
          + " | ".join(f"{p} log-avg | {p} min" for p in rows) + " |")
    print("|---|---|---|---|" + "---|---|" * len(rows))
    for k in range(len(rows[POTENTIALS[0]])):
        base = rows[POTENTIALS[0]][k]
        dfpt_avg = "–" if base[2] is None else f"{base[2]:.2f}"
        cols = [f"{base[0]} | {base[1]} | {dfpt_avg} | {base[3]:.2f}"]
        for pot in rows:
            r = rows[pot][k]
            cols.append("error | error" if r[4] is None else f"{r[4]:.2f} | {r[5]:.2f}")
        print("| " + " | ".join(cols) + " |")
    n_store = sum(r[2] is None for r in rows[POTENTIALS[0]])
    print(f"\nStability over {len(rows[POTENTIALS[0]])} DFPT verdicts ({n_store} from "
          f"--dfpt-store) (DFPT unstable: min < -0.5 meV; MLIP flags unstable: min < threshold; "
          "an MLIP error counts as not flagged)")
    print("| potential | threshold (meV) | TP | FN | FP | TN | flagged, of which DFPT-stable |")
    print("|---|---|---|---|---|---|---|")
    for pot, rs in rows.items():
        for thr in (-0.5, -1.0, -2.0, -3.0, -4.0, -5.0, -8.0):
            tp = fn = fp = tn = 0
            for r in rs:
                dfpt_bad = r[3] < DFPT_UNSTABLE_MEV
                flagged = r[5] is not None and r[5] < thr
                tp += dfpt_bad and flagged
                fn += dfpt_bad and not flagged
                fp += (not dfpt_bad) and flagged
                tn += (not dfpt_bad) and not flagged
            print(f"| {pot} | {thr} | {tp} | {fn} | {fp} | {tn} | {fp}/{tp + fp} |")


def dfpt_store_verdicts(spec: str | None) -> list[tuple[str, str, object, float]]:
    """(source id, formula, structure, DFPT lowest frequency) of every el-ph document of a
    store with a stability verdict (completed or unstable), newest per calculation.

    Records already among the fast-v1 ones (same bete-net id) are left out; so are the
    reserved evaluation cells, which no campaign computes.
    """
    if not spec:
        return []
    from pymatgen.core import Structure

    from stores.config import load_job_store
    from stores.queries import iter_elph_documents

    known = {str(i) for i in records()} | {str(i) for i in RESERVED}
    store = load_job_store(spec, create=False, read_only=True)
    store.connect()
    out = []
    for doc in iter_elph_documents(store):
        sid = str(doc.get("source_id") or doc.get("input_hash", "")[:8])
        if doc.get("min_frequency_meV") is None or sid in known:
            continue
        known.add(sid)
        out.append((sid, doc["formula"], Structure.from_dict(doc["structure"]),
                    float(doc["min_frequency_meV"])))
    store.close()
    return out


def sample(args: argparse.Namespace) -> None:
    from pymatgen.core import Structure

    by_n: dict[int, list[int]] = defaultdict(list)
    for p in BETE_NET.glob("*.cif"):
        if int(p.stem) not in RESERVED:
            by_n[len(Structure.from_file(p))].append(int(p.stem))
    total = sum(len(v) for v in by_n.values())
    rng = random.Random(args.seed)
    picked: dict[int, list[int]] = {}
    for n, ids in sorted(by_n.items()):
        k = max(1, round(args.n * len(ids) / total))
        picked[n] = rng.sample(sorted(ids), min(k, len(ids)))
    # round-robin over the strata, so that any prefix of the run is a stratified sample too
    queues = [list(ids) for _n, ids in sorted(picked.items())]
    sizes = [n for n, _ids in sorted(picked.items())]
    jobs = []
    while any(queues):
        for n, q in zip(sizes, queues, strict=True):
            if q:
                jobs.append((n, q.pop(0)))
    print(f"{total} cells (reserved left out), atom counts "
          f"{ {n: len(v) for n, v in sorted(by_n.items())} }; sample of {len(jobs)}", flush=True)
    t0 = time.perf_counter()
    results = []
    with ProcessPoolExecutor(args.workers) as pool:
        for (n, i), r in zip(jobs, pool.map(compute, [(Structure.from_file(
                BETE_NET / f"{i}.cif"), args.potential) for _n, i in jobs]), strict=True):
            results.append(r)
            print(f"  cell {i} ({n} atoms): CPU {r['cpu_s']:.1f} s, wall {r['wall_s']:.1f} s"
                  + (f", error: {r['error']}" if r["error"] else ""), flush=True)
    wall = time.perf_counter() - t0
    per_n: dict[int, list[dict]] = defaultdict(list)
    for (n, _i), r in zip(jobs, results, strict=True):
        per_n[n].append(r)
    print("| atoms | cells | sampled | errors | mean CPU s | mean wall s | est. CPU s (all) |")
    print("|---|---|---|---|---|---|---|")
    est = 0.0
    for n in sorted(per_n):
        cpu = float(np.mean([r["cpu_s"] for r in per_n[n]]))
        wl = float(np.mean([r["wall_s"] for r in per_n[n]]))
        est += cpu * len(by_n[n])
        errs = sum(r["error"] is not None for r in per_n[n])
        print(f"| {n} | {len(by_n[n])} | {len(per_n[n])} | {errs} | {cpu:.1f} | {wl:.1f} | "
              f"{cpu * len(by_n[n]):.0f} |")
    loads = [r["load_s"] for r in results if r["load_s"] > 0.5]
    print(f"sample wall {wall:.0f} s in {args.workers} workers; model loads {len(loads)} × "
          f"{np.mean(loads) if loads else 0:.1f} s")
    print(f"all {total} cells: {est:.0f} CPU s = {est / args.workers / 60:.1f} min on "
          f"{args.workers} cores (+ one model load per worker)")
    for (_n, i), r in zip(jobs, results, strict=True):
        if r["error"]:
            print(f"  {i}: {r['error']}")


def displacements(args: argparse.Namespace) -> None:
    """Side by side: ± displacements against one-way + residual forces, same cells, one process."""
    import torch
    from pymatgen.core import Structure

    from workflows.mlip.flows import MLIPPhononMaker
    from workflows.mlip.phonons import compute_mlip_phonons
    from workflows.mlip.potentials import get_potential

    torch.set_num_threads(1)
    makers = {"±": MLIPPhononMaker(potential=args.potential, residual_forces=False),
              "residual": MLIPPhononMaker(potential=args.potential)}
    get_potential(args.potential).calculator()
    ids = sorted(int(p.stem) for p in BETE_NET.glob("*.cif") if int(p.stem) not in RESERVED)
    picked = random.Random(args.seed).sample(ids, min(args.n, len(ids)))
    cpu = dict.fromkeys(makers, 0.0)
    evals = dict.fromkeys(makers, 0)
    changed, errors, deltas = 0, 0, []
    print("| cell | formula | supercells ± → one-way | min ± / one-way (meV) "
          "| log-avg ± / one-way (meV) | max ± / one-way (meV) |")
    print("|---|---|---|---|---|---|")
    for k, i in enumerate(picked):
        s = Structure.from_file(BETE_NET / f"{i}.cif")
        docs = {}
        for name in (list(makers) if k % 2 == 0 else list(makers)[::-1]):
            c0 = time.process_time()
            try:
                docs[name] = compute_mlip_phonons(s, makers[name])
            except ValueError:
                docs[name] = None
            cpu[name] += time.process_time() - c0
        a, b = docs["±"], docs["residual"]
        if a is None or b is None:
            errors += 1
            continue
        for name, d in docs.items():
            evals[name] += d.n_displacements * d.n_supercell_atoms
        if a.n_displacements == b.n_displacements and max(
                abs(a.min_frequency_meV - b.min_frequency_meV),
                abs(a.mean_log_frequency_meV - b.mean_log_frequency_meV)) < 0.05:
            continue
        changed += 1
        deltas.append((abs(a.min_frequency_meV - b.min_frequency_meV),
                       abs(a.mean_log_frequency_meV - b.mean_log_frequency_meV),
                       abs(a.max_frequency_meV - b.max_frequency_meV)))
        print(f"| {i} | {s.composition.reduced_formula} | {a.n_displacements} → "
              f"{b.n_displacements} | {a.min_frequency_meV:.2f} / {b.min_frequency_meV:.2f} | "
              f"{a.mean_log_frequency_meV:.2f} / {b.mean_log_frequency_meV:.2f} | "
              f"{a.max_frequency_meV:.2f} / {b.max_frequency_meV:.2f} |", flush=True)
    print(f"\n{len(picked)} cells (seed {args.seed}), {errors} errors, {changed} with other "
          "supercells or a change > 0.05 meV")
    print("| displacements | CPU s | supercell-atom force evaluations |")
    print("|---|---|---|")
    for name in makers:
        print(f"| {name} | {cpu[name]:.0f} | {evals[name]} |")
    print(f"CPU ratio one-way/± {cpu['residual'] / cpu['±']:.3f}; evaluations ratio "
          f"{evals['residual'] / max(evals['±'], 1):.3f}")
    if deltas:
        d = np.array(deltas)
        print(f"largest change among the changed cells: min {d[:, 0].max():.3f} meV, "
              f"log-average {d[:, 1].max():.3f} meV, max {d[:, 2].max():.3f} meV")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["timing", "agreement", "sample", "displacements"])
    ap.add_argument("--store", default=str(REPO / "benchmarks" / ".mlip_store"),
                    help="store reused by `agreement` (documents computed once)")
    ap.add_argument("--dfpt-store", help="`agreement`: also every el-ph document of this "
                    "store with a stability verdict (campaign results), in the confusion table")
    ap.add_argument("--n", type=int, default=80,
                    help="sample size for `sample` and `displacements`")
    ap.add_argument("--workers", type=int, default=2, help="processes for `sample`")
    ap.add_argument("--potential", default="sevennet-0", help="potential for `sample`")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    {"timing": timing, "agreement": agreement, "sample": sample,
     "displacements": displacements}[args.part](args)


if __name__ == "__main__":
    main()

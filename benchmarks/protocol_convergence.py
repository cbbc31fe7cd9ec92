"""q/k/smearing convergence of λ, ω_log, Tc and the stability verdict on a validation set.

    python benchmarks/protocol_convergence.py --store ~/bete-study/store \\
        --scratch ~/bete-study/scratch [--ids 21 503 ...] [--points q2 q3 q4 ...] \\
        [--budget-hours H] [--max-point-hours H] [--plan] [--table-only] [--json FILE]
    python benchmarks/protocol_convergence.py \
        --from-json benchmarks/results/protocol_convergence.json   # the committed table

Every (structure, point) pair is one DFPT el-ph calculation of the ``fast`` preset with the
point's overrides (pslibrary PBE by default). The ladder, per structure:

- ``q2``, ``q3``, ``q4`` (and ``q6`` for one-atom cells): the q grid at a fixed k grid and a
  fixed dense (la2F) grid. The fixed k is the ``fast`` rule's k rounded up to a divisor of
  the dense grid; the dense grid is the smallest multiple of k and of every q of the ladder
  that is at least 2k (24 for every cubic cell of the default set), so that only q moves.
- ``k+``: the densest q with a denser k grid (k + 4 per axis, dense again the smallest
  common multiple >= 2k).
- ``s0.04``: the densest q with Methfessel–Paxton smearing 0.04 Ry instead of 0.02 Ry.

The densest q at base k and smearing 0.02 Ry is the reference of each structure. By default
(``--order ladder``) the q ladders run first, one structure after the other in the order of
``--ids``, and within a structure the reference, then the coarser q points; then the
``k+`` and smearing points, cheapest first. So an interrupted study leaves whole ladders, not
a scatter of cheap points without their reference (``--order cost`` runs everything cheapest
first). Points run through the campaign machinery, so the study is resumable: the store
reuses finished calculations, finished QE steps are not rerun, claims keep two processes off
the same point, failures are recorded. Run it again with
``--table-only`` to print the table from the store. Non-cubic cells get q_i scaled by
|b_i|/max|b| per axis.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pymatgen.core import Structure  # noqa: E402

from launchers.cli import sigterm_as_interrupt  # noqa: E402
from stores.claims import ClaimBoard  # noqa: E402
from stores.config import load_job_store  # noqa: E402
from stores.datasets import RESERVED_BETE_NET_IDS  # noqa: E402
from stores.queries import find_elph_by_hash  # noqa: E402
from workflows.common.physics import (  # noqa: E402
    DEFAULT_MU_STAR,
    DEFAULT_STABILITY_THRESHOLD_MEV,
)
from workflows.qe.campaign import plan_campaign, run_campaign  # noqa: E402
from workflows.qe.flows import ElphFlowMaker  # noqa: E402

SHARED = REPO.parent / "shared"
VALIDATION_IDS = (693, 611, 330, 356, 770, 684, 21, 503, 761, 641, 245)
"""NbN, AlNi (a weak binary), InP, YS, ZrB, HPd, Pb, V, VC, TaC, Ta: in the order their
ladders run (strong couplers where fast-v1 and JARVIS disagree first, cheap before dear)."""
Q_LADDER = (2, 3, 4)
Q_ONE_ATOM = 6
DENSE_DIVISORS = (6, 8, 12, 24)
K_STEP = 4
SMEARING_BASE_RY = 0.02
SMEARING_ALT_RY = 0.04
LAMBDA_TOLERANCE = 0.15
SIGMA_CHECK_RY = 0.04
"""A second el-ph broadening shown beside the headline 0.02 Ry: far apart = dense grid short."""


@dataclass(frozen=True)
class Point:
    """One calculation of the ladder for one structure."""

    name: str
    q: int
    k_step: int = 0
    degauss: float = SMEARING_BASE_RY


def ladder(nsites: int) -> list[Point]:
    """The points of one structure; the last q point is the densest."""
    qs = [*Q_LADDER, *((Q_ONE_ATOM,) if nsites == 1 else ())]
    densest = qs[-1]
    return [*(Point(f"q{q}", q) for q in qs),
            Point("k+", densest, k_step=K_STEP),
            Point(f"s{SMEARING_ALT_RY:g}", densest, degauss=SMEARING_ALT_RY)]


def reference_name(nsites: int) -> str:
    """The reference point: densest q, base k, base smearing."""
    return f"q{Q_ONE_ATOM if nsites == 1 else Q_LADDER[-1]}"


def _scaled(n: int, lengths: list[float]) -> list[int]:
    top = max(lengths)
    return [max(1, round(n * b / top)) for b in lengths]


def point_overrides(structure: Structure, base_k: list[int], point: Point,
                    nsites: int) -> dict[str, Any]:
    """Explicit q, k and dense grids (and smearing) of one point."""
    lengths = list(structure.lattice.reciprocal_lattice.abc)
    q_all = [_scaled(q, lengths) for q in (*Q_LADDER, *((Q_ONE_ATOM,) if nsites == 1 else ()))]
    k = [_divisor_at_least(ki) + point.k_step for ki in base_k]
    dense = [_dense(ki, [q[i] for q in q_all]) for i, ki in enumerate(k)]
    overrides: dict[str, Any] = {"q_grid": _scaled(point.q, lengths), "k_grid": k,
                                 "k_grid_dense": dense}
    if point.degauss != SMEARING_BASE_RY:
        overrides["pw"] = {"system": {"degauss": point.degauss}}
    return overrides


def _divisor_at_least(k: int) -> int:
    return next((d for d in DENSE_DIVISORS if d >= k), k)


def _dense(k: int, qs: list[int]) -> int:
    step = math.lcm(k, *qs)
    return step * math.ceil(2 * k / step)


def load_structures(ids: list[int], folder: Path) -> list[tuple[str, Structure]]:
    """bete-net structures by id; reserved ids refused."""
    bad = sorted(set(ids) & set(RESERVED_BETE_NET_IDS))
    if bad:
        raise SystemExit(f"ids {bad} are reserved for evaluation: never computed")
    return [(str(i), Structure.from_file(folder / f"{i}.cif")) for i in ids]


def plan(structures: list[tuple[str, Structure]], args: argparse.Namespace) -> list[dict]:
    """Every (structure, point) with its maker, planned item and cost."""
    base = ElphFlowMaker.from_preset("fast", pseudo_family=args.pseudos, scratch_dir=args.scratch)
    entries = []
    for source_id, structure in structures:
        base_set = base.input_set(structure)
        nsites = len(base_set.structure)
        for point in ladder(nsites):
            if args.points and point.name not in args.points:
                continue
            overrides = point_overrides(base_set.structure, base_set.k_grid, point, nsites)
            maker = ElphFlowMaker.from_preset(preset="fast", overrides=overrides,
                                              pseudo_family=args.pseudos, scratch_dir=args.scratch)
            planned, classified = plan_campaign([(source_id, structure)], maker, reserved=())
            if classified:
                print(f"{source_id} {point.name}: {classified[0].outcome}: "
                      f"{classified[0].message}", file=sys.stderr)
                continue
            entries.append({"source_id": source_id, "point": point, "maker": maker,
                            "item": planned[0], "nsites": nsites,
                            "reference": point.name == reference_name(nsites)})
    return order_entries(entries, args.order)


def order_entries(entries: list[dict], order: str) -> list[dict]:
    """``cost``: cheapest first; ``ladder``: whole q ladders first, structures in the order
    given (see the module doc)."""
    if order == "cost":
        return sorted(entries, key=lambda e: e["item"].cost)
    position = {sid: i for i, sid in enumerate(dict.fromkeys(e["source_id"] for e in entries))}

    def key(e: dict) -> tuple:
        if not e["point"].name.startswith("q"):
            return (1, e["item"].cost, 0)
        return (0, position[e["source_id"]], -e["point"].q)

    return sorted(entries, key=key)


def run(entries: list[dict], args: argparse.Namespace) -> None:
    """Run every entry not in the store, cheapest first, within the budget."""
    store = load_job_store(args.store)
    store.connect()
    board = ClaimBoard(Path(args.store).expanduser() / "claims", lease_s=900)
    start = time.time()
    try:
        for n, entry in enumerate(entries, 1):
            left = args.budget_hours * 3600 - (time.time() - start) if args.budget_hours else None
            if left is not None and left < 60:
                print("budget spent; rerun to continue", file=sys.stderr)
                break
            label = f"[{n}/{len(entries)}] {entry['source_id']} {entry['point'].name}"
            print(f"{label}: {entry['item'].formula}, cost {entry['item'].cost:.3g}",
                  file=sys.stderr)
            (outcome,) = run_campaign(
                [entry["item"]], entry["maker"], store, board, budget_s=left,
                structure_limit_s=args.max_point_hours * 3600 if args.max_point_hours else None,
                progress=lambda m: print(f"  {m}", file=sys.stderr))
            print(f"{label}: {outcome.outcome} λ={outcome.lambda_} "
                  f"({outcome.wall_s / 60:.1f} min)", file=sys.stderr)
    finally:
        board.release_all()
        store.close()


def rows_from_store(entries: list[dict], store_path: str) -> list[dict[str, Any]]:
    """One row per (structure, point); None values where nothing is stored yet."""
    store = load_job_store(store_path)
    store.connect()
    rows = []
    try:
        for entry in entries:
            item, point = entry["item"], entry["point"]
            doc = find_elph_by_hash(store, item.key) or {}
            iset = item.input_set
            rows.append({
                "source_id": entry["source_id"], "formula": item.formula,
                "nsites": entry["nsites"], "point": point.name,
                "reference": entry["reference"], "q_grid": iset.q_grid, "k_grid": iset.k_grid,
                "k_grid_dense": iset.k_grid_dense, "degauss_Ry": point.degauss,
                "status": doc.get("status"), "lambda": doc.get("lambda_"),
                "lambda_by_sigma": {f"{b['sigma_Ry']:g}": round(b["lambda_"], 4)
                                    for b in doc.get("broadenings") or []},
                "lambda_q_sum": doc.get("lambda_q_sum"),
                "omega_log_K": doc.get("omega_log_K"), "tc_K": doc.get("tc_allen_dynes_K"),
                "mu_star": doc.get("mu_star"), "stable": doc.get("dynamically_stable"),
                "min_frequency_meV": doc.get("min_frequency_meV"),
                "wall_min": (round(sum((doc.get("wall_times_s") or {}).values()) / 60, 1)
                             if doc else None),
                "input_hash": item.key[:12], "cost": item.cost})
    finally:
        store.close()
    _relative_to_reference(rows)
    return rows


def _relative_to_reference(rows: list[dict[str, Any]]) -> None:
    refs = {r["source_id"]: r for r in rows if r["reference"] and r["lambda"] is not None}
    for r in rows:
        ref = refs.get(r["source_id"])
        r["dlambda_rel"] = (None if ref is None or r["lambda"] is None
                            else round(r["lambda"] / ref["lambda"] - 1, 3))
        r["verdict_matches"] = (None if ref is None or r["stable"] is None
                                else r["stable"] == ref["stable"])


def table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table, one line per point, structures in id order."""
    order = {p: i for i, p in enumerate(["q2", "q3", "q4", "q6", "k+", f"s{SMEARING_ALT_RY:g}"])}
    rows = sorted(rows, key=lambda r: (int(r["source_id"]), order.get(r["point"], 9)))
    head = (f"{'id':>4} {'formula':8} {'point':6} {'q':>7} {'k':>8} {'dense':>8} {'σ_Ry':>5} "
            f"{'λ':>6} {'Δλ/λref':>8} {'λ σ.04':>6} {'λ_qsum':>6} {'ω_log K':>8} {'Tc K':>6} "
            f"{'stable':>6} {'min meV':>8} {'wall min':>8}")
    lines = [head, "-" * len(head)]

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    missing = [r for r in rows if r["lambda"] is None and r["status"] is None]
    for r in rows:
        if r in missing:
            continue
        grid = "x".join(str(v) for v in r["q_grid"])
        kgrid = "x".join(str(v) for v in r["k_grid"])
        dense = "x".join(str(v) for v in r["k_grid_dense"])
        stable = "-" if r["stable"] is None else ("yes" if r["stable"] else "NO")
        mark = "*" if r["reference"] else " "
        lines.append(
            f"{r['source_id']:>4} {r['formula']:8} {r['point']:5}{mark} {grid:>7} {kgrid:>8} "
            f"{dense:>8} {r['degauss_Ry']:>5.2f} {f(r['lambda'], '.3f'):>6} "
            f"{f(r['dlambda_rel'], '+.1%'):>8} "
            f"{f(r['lambda_by_sigma'].get(f'{SIGMA_CHECK_RY:g}'), '.3f'):>6} "
            f"{f(r['lambda_q_sum'], '.3f'):>6} {f(r['omega_log_K'], '.0f'):>8} "
            f"{f(r['tc_K'], '.1f'):>6} {stable:>6} {f(r['min_frequency_meV'], '.2f'):>8} "
            f"{f(r['wall_min'], '.1f'):>8}")
    lines.append(f"{len(rows) - len(missing)} of {len(rows)} points computed; not yet: "
                 + (", ".join(f"{r['formula']} {r['point']}" for r in missing) or "none"))
    lines.append(f"λ at the el-ph broadening 0.02 Ry (headline) and {SIGMA_CHECK_RY} Ry; λ_qsum: "
                 "λ summed over the computed q points (no interpolation)")
    lines.append(f"* reference (densest q, base k, σ {SMEARING_BASE_RY} Ry); Tc Allen–Dynes, "
                 f"μ* {DEFAULT_MU_STAR}; stable = no phonon DOS weight below "
                 f"{DEFAULT_STABILITY_THRESHOLD_MEV} meV")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store directory (study results)")
    parser.add_argument("--from-json", metavar="FILE",
                        help="print the table of rows saved with --json (e.g. "
                        "benchmarks/results/protocol_convergence.json); needs no store")
    parser.add_argument("--scratch", help="calculation directories (default: settings)")
    parser.add_argument("--pseudos", default=str(SHARED / "pseudo" / "pslibrary-1.0.0-pbe-us"))
    parser.add_argument("--structures", default=str(SHARED / "structures" / "bete-net"))
    parser.add_argument("--ids", nargs="+", type=int, default=list(VALIDATION_IDS))
    parser.add_argument("--points", nargs="+", help="only these point names (q2 q3 q4 q6 k+ "
                        f"s{SMEARING_ALT_RY:g})")
    parser.add_argument("--order", choices=["ladder", "cost"], default="ladder",
                        help="ladder: whole q ladders first (default); cost: cheapest first")
    parser.add_argument("--budget-hours", type=float)
    parser.add_argument("--max-point-hours", type=float)
    parser.add_argument("--plan", action="store_true", help="print the order and stop")
    parser.add_argument("--table-only", action="store_true", help="print the table, run nothing")
    parser.add_argument("--json", help="write the rows to this JSON file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.from_json:
        print(table(json.loads(Path(args.from_json).read_text())))
        return
    if not args.store:
        parser.error("--store is needed (or --from-json FILE)")
    entries = plan(load_structures(args.ids, Path(args.structures)), args)
    if args.plan:
        for n, e in enumerate(entries, 1):
            i = e["item"].input_set
            print(f"{n:3} {e['source_id']:>4} {e['item'].formula:8} {e['point'].name:6} "
                  f"q {i.q_grid} k {i.k_grid} dense {i.k_grid_dense} cost {e['item'].cost:.3g}")
        return
    if not args.table_only:
        try:
            with sigterm_as_interrupt():  # kill -TERM: QE stopped, claim released
                run(entries, args)
        except KeyboardInterrupt:
            raise SystemExit("interrupted; rerun the same command to resume") from None
    rows = rows_from_store(entries, args.store)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()

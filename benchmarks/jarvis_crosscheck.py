"""Our DFPT Tc against JARVIS-DFT's on the materials both computed.

    python benchmarks/jarvis_crosscheck.py [--data stores/data/fast-v1 | STORE] \\
        [--protocol-fingerprint FP] [--jarvis ../shared/datasets/jarvis-tc] [--include-unstable] \\
        [--json FILE]

Every record of the dataset (a fast-v1-layout folder or a store; one protocol, chosen with
``--protocol-fingerprint`` when the source holds several) whose structure matches a jarvis-tc row
(pymatgen ``StructureMatcher``, volume scaled: JARVIS relaxed with PBEsol) gives one row:
both Tc, their ratio. Our Tc is Allen–Dynes with f1·f2 at μ* 0.10 (the records' headline);
JARVIS's is McMillan–Allen–Dynes (Choudhary & Garrity, npj Comput. Mater. 8, 244 (2022)), so
the ``ours_mad`` column recomputes ours with that formula from the same λ, ω_log. Prints the
table, the mean absolute difference and the median ratio (ours / JARVIS, rows with JARVIS Tc
above 0.5 K). JARVIS is an independent calculation (other functional, pseudopotentials,
grids), not ground truth: agreement within a few kelvin is what converged DFPT of the same
material gives; a ratio of 2-3 points at our labels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: E402

from stores.datasets import load_records, packaged_fast_v1_dir  # noqa: E402
from stores.training_record import TrainingRecord  # noqa: E402
from workflows.common.physics import DEFAULT_MU_STAR, mcmillan_allen_dynes_tc  # noqa: E402

SHARED = REPO.parent / "shared"
RATIO_FLOOR_K = 0.5
"""Rows with a JARVIS Tc below this are left out of the median ratio (0 K rows)."""


def matches(records: list[TrainingRecord], jarvis: list[TrainingRecord]) -> list[tuple]:
    """(record, jarvis row) pairs of the same structure, one jarvis row per record at most."""
    by_formula: dict[str, list[TrainingRecord]] = defaultdict(list)
    for row in jarvis:
        by_formula[row.structure.composition.reduced_formula].append(row)
    matcher = StructureMatcher(primitive_cell=True, scale=True, attempt_supercell=True)
    pairs = []
    for rec in records:
        for row in by_formula.get(rec.structure.composition.reduced_formula, []):
            if matcher.fit(rec.structure, row.structure):
                pairs.append((rec, row))
                break
    return pairs


def row_of(rec: TrainingRecord, jrow: TrainingRecord) -> dict[str, Any]:
    """One table row: our labels, JARVIS's Tc, ratio."""
    lam = rec.labels.get("lambda_")
    wlog = rec.labels.get("omega_log_K")
    ours = rec.labels.get("tc_allen_dynes_K")
    mad = (mcmillan_allen_dynes_tc(lam, wlog, DEFAULT_MU_STAR)
           if lam is not None and wlog is not None else None)
    theirs = float(jrow.tc_K or 0.0)
    return {"id": rec.id, "formula": rec.formula, "jid": jrow.id, "lambda": lam,
            "omega_log_K": wlog, "tc_ours_K": ours, "tc_ours_mad_K": mad,
            "tc_jarvis_K": theirs,
            "ratio": (ours / theirs if ours is not None and theirs > RATIO_FLOOR_K else None)}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean absolute difference (Allen–Dynes and McMillan–Allen–Dynes) and median ratio."""
    ad = [abs(r["tc_ours_K"] - r["tc_jarvis_K"]) for r in rows if r["tc_ours_K"] is not None]
    mad = [abs(r["tc_ours_mad_K"] - r["tc_jarvis_K"]) for r in rows
           if r["tc_ours_mad_K"] is not None]
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    return {"matches": len(rows), "mae_allen_dynes_K": statistics.fmean(ad) if ad else None,
            "mae_mcmillan_K": statistics.fmean(mad) if mad else None,
            "median_ratio": statistics.median(ratios) if ratios else None,
            "n_ratio": len(ratios)}


def format_table(rows: list[dict[str, Any]], stats: dict[str, Any]) -> str:
    """Plain-text table and summary lines."""
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    head = (f"{'id':>6} {'formula':9} {'jid':13} {'λ':>6} {'ω_log K':>8} {'Tc ours':>8} "
            f"{'ours MAD':>8} {'JARVIS':>7} {'ratio':>6}")
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: -(r["tc_jarvis_K"] or 0)):
        lines.append(f"{r['id']:>6} {r['formula']:9} {r['jid']:13} {f(r['lambda'], '.2f'):>6} "
                     f"{f(r['omega_log_K'], '.0f'):>8} {f(r['tc_ours_K'], '.1f'):>8} "
                     f"{f(r['tc_ours_mad_K'], '.1f'):>8} {r['tc_jarvis_K']:>7.1f} "
                     f"{f(r['ratio'], '.2f'):>6}")
    lines.append(f"matches {stats['matches']}; Tc MAE (Allen–Dynes f1·f2 vs JARVIS) "
                 f"{f(stats['mae_allen_dynes_K'], '.2f')} K; with McMillan–Allen–Dynes "
                 f"{f(stats['mae_mcmillan_K'], '.2f')} K; median ratio ours/JARVIS "
                 f"{f(stats['median_ratio'], '.2f')} (over {stats['n_ratio']} rows with JARVIS "
                 f"Tc > {RATIO_FLOOR_K} K)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(packaged_fast_v1_dir()),
                        help="fast-v1-layout folder or store (default: the shipped fast-v1)")
    parser.add_argument("--protocol-fingerprint", "--fingerprint",
                        help="protocol fingerprint (or prefix) to check")
    parser.add_argument("--jarvis", default=str(SHARED / "datasets" / "jarvis-tc"))
    parser.add_argument("--include-unstable", action="store_true",
                        help="also dynamically unstable records (their Tc means little)")
    parser.add_argument("--json", help="write rows and summary to this JSON file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    records = [r for r in load_records(args.data, protocol_fingerprint=args.protocol_fingerprint,
                                       drop_unstable=not args.include_unstable,
                                       report=lambda m: None)
               if r.labels.get("lambda_") is not None]
    jarvis = load_records(args.jarvis, report=lambda m: None)
    rows = [row_of(rec, jrow) for rec, jrow in matches(records, jarvis)]
    stats = summary(rows)
    print(f"{len(records)} records of {args.data} against {len(jarvis)} jarvis-tc rows")
    print(format_table(rows, stats))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": stats, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

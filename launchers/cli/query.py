"""``bete query``: electron-phonon results in the store as a table, JSON or CSV."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from launchers.cli.common import (
    UserError,
    add_format_argument,
    add_preset_argument,
    add_protocol_fingerprint_argument,
    format_rows,
    open_store,
)
from stores.constants import DEFAULT_MU_STAR
from stores.protocol import derive_identity
from stores.queries import iter_elph_documents
from workflows.common.physics import allen_dynes_tc, mcmillan_allen_dynes_tc

COLUMNS = [
    "formula", "source_id", "preset", "pseudo_family", "status", "lambda", "omega_log_K",
    "omega_2_K",
    "tc_allen_dynes_K", "tc_mcmillan_K", "dynamically_stable", "min_frequency_meV",
    "pressure_kbar", "protocol_fingerprint", "input_hash",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete query``."""
    p = sub.add_parser("query", help="list electron-phonon results in the store",
                       description="List electron-phonon task documents (λ and moments at the "
                       "preset's reference broadening; σ = 0.02 Ry for fast).")
    p.add_argument("--store", help="store directory or YAML spec (default: settings)")
    add_format_argument(p)
    p.add_argument("--documents", choices=["elph", "mlip-phonons"], default="elph",
                   help="electron-phonon task documents (default) or the MLIP phonon "
                   "documents of `bete phonons`")
    p.add_argument("--potential", help="with --documents mlip-phonons: sevennet-0 or chgnet")
    p.add_argument("--formula", help="reduced formula, e.g. MgB2")
    add_preset_argument(p, "preset name, e.g. fast", default=None)
    add_protocol_fingerprint_argument(p, "protocol fingerprint or its prefix (the "
                                      "protocol_fingerprint column; derived for documents "
                                      "older than the field)")
    p.add_argument("--status", help="completed, unstable, insulator or failed")
    p.add_argument("--lambda-min", type=float, help="minimum λ")
    p.add_argument("--lambda-max", type=float, help="maximum λ")
    p.add_argument("--tc-min", type=float, help="minimum Allen-Dynes Tc (K)")
    p.add_argument("--tc-max", type=float, help="maximum Allen-Dynes Tc (K)")
    p.add_argument("--stable-only", action="store_true", help="dynamically stable only")
    p.add_argument("--mu-star", type=float,
                   help="recompute both Tc columns (and the Tc filter) for this Coulomb "
                   "pseudopotential μ* from the stored λ, ω_log, ω₂ (default: the μ* each "
                   f"document was computed with, {DEFAULT_MU_STAR} unless set)")
    p.set_defaults(func=run)


def _range(lo: float | None, hi: float | None) -> dict[str, float] | None:
    rng: dict[str, float] = {}
    if lo is not None:
        rng["$gte"] = lo
    if hi is not None:
        rng["$lte"] = hi
    return rng or None


def criteria_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Store criteria (output field → condition) from the filter flags."""
    crit: dict[str, Any] = {}
    for field, value in (("formula", args.formula), ("preset", args.preset),
                         ("status", args.status)):
        if value:
            crit[field] = value
    if args.stable_only:
        crit["dynamically_stable"] = True
    tc_range = None if args.mu_star is not None else _range(args.tc_min, args.tc_max)
    for field, rng in (("lambda_", _range(args.lambda_min, args.lambda_max)),
                       ("tc_allen_dynes_K", tc_range)):
        if rng:
            crit[field] = rng
    return crit


def row(doc: dict[str, Any], mu_star: float | None = None) -> dict[str, Any]:
    """A flat result row of a task document (both Tc recomputed when ``mu_star`` is given)."""
    scf = doc.get("scf") or {}
    out = {c: doc.get(c) for c in COLUMNS}
    out["mu_star"] = doc.get("mu_star")
    lam, wlog, w2 = doc.get("lambda_"), doc.get("omega_log_K"), doc.get("omega_2_K")
    if mu_star is not None and lam is not None and wlog is not None and w2 is not None:
        out["mu_star"] = mu_star
        out["tc_allen_dynes_K"] = allen_dynes_tc(lam, wlog, w2, mu_star)
        out["tc_mcmillan_K"] = mcmillan_allen_dynes_tc(lam, wlog, mu_star)
    identity, why_not = derive_identity(doc)
    out["protocol_fingerprint"] = (doc.get("protocol_fingerprint")
                                   or (identity.fingerprint() if identity else None))
    out["protocol_label"] = identity.label() if identity else None
    out["pseudo_family"] = (identity.pseudo_family if identity else
                            ((doc.get("parameters") or {}).get("family") or {}).get("name"))
    if identity is None:
        out["protocol_fingerprint_missing"] = why_not
    out["lambda"] = doc.get("lambda_")
    out["pressure_kbar"] = scf.get("pressure_kbar")
    out["reference_sigma_Ry"] = doc.get("reference_sigma_Ry")
    out["lambda_q_sum"] = doc.get("lambda_q_sum")
    out["warnings"] = doc.get("warnings", [])
    return out


MLIP_COLUMNS = ["formula", "source_id", "nsites", "potential", "potential_version",
                "min_frequency_meV", "dynamically_stable", "mean_log_frequency_meV",
                "max_frequency_meV", "wall_s", "key"]


def run_mlip(args: argparse.Namespace) -> int:
    """Print the MLIP phonon documents (``--documents mlip-phonons``)."""
    from stores.mlip_phonons import iter_mlip_phonons

    crit: dict[str, Any] = {k: v for k, v in (("formula", args.formula),
                                              ("potential", args.potential)) if v}
    if args.stable_only:
        crit["dynamically_stable"] = True
    store = open_store(args.store, write=False)
    try:
        rows = [{c: d.get(c) for c in MLIP_COLUMNS} for d in iter_mlip_phonons(store, crit)]
    finally:
        store.close()
    if not rows and args.format == "table":
        print("no MLIP phonon documents match (run `bete phonons STRUCTURES...` first)")
        return 0
    print(format_rows(rows, args.format, MLIP_COLUMNS))
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the matching rows."""
    if args.documents == "mlip-phonons":
        return run_mlip(args)
    store = open_store(args.store, write=False)
    try:
        rows = [row(d, args.mu_star)
                for d in iter_elph_documents(store, criteria_from_args(args))]
    finally:
        store.close()
    if args.protocol_fingerprint:
        rows = [r for r in rows
                if str(r["protocol_fingerprint"]).startswith(args.protocol_fingerprint)]
    if args.mu_star is not None and (args.tc_min is not None or args.tc_max is not None):
        lo = -np.inf if args.tc_min is None else args.tc_min
        hi = np.inf if args.tc_max is None else args.tc_max
        rows = [r for r in rows if r["tc_allen_dynes_K"] is not None
                and lo <= r["tc_allen_dynes_K"] <= hi]
    if not rows and args.format == "table":
        print("no results match (run `bete dfpt run STRUCTURES...` first)")
        return 0
    print(format_rows(rows, args.format, None if args.format == "json" else COLUMNS))
    return 0


__all__ = ["register", "run", "row", "criteria_from_args", "UserError"]

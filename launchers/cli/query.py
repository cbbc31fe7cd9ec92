"""``bete query``: electron-phonon results in the store as a table, JSON or CSV."""

from __future__ import annotations

import argparse
from typing import Any

from launchers.cli.common import (
    UserError,
    add_format_argument,
    add_preset_argument,
    add_protocol_fingerprint_argument,
    format_rows,
    open_store,
)
from stores.constants import DEFAULT_MU_STAR
from workflows.common.elph_results import COLUMNS, elph_rows


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
        rows = elph_rows(store, criteria_from_args(args), mu_star=args.mu_star,
                         fingerprint=args.protocol_fingerprint, tc_min=args.tc_min,
                         tc_max=args.tc_max)
    finally:
        store.close()
    if not rows and args.format == "table":
        print("no results match (run `bete dfpt run STRUCTURES...` first)")
        return 0
    print(format_rows(rows, args.format, None if args.format == "json" else COLUMNS))
    return 0


__all__ = ["register", "run", "criteria_from_args", "UserError"]

"""``bete phonons``: phonons of structure files from a universal interatomic potential."""

from __future__ import annotations

import argparse

from launchers.cli.common import UserError, add_format_argument, format_rows, open_store, progress
from launchers.cli.elph_args import read_structures

COLUMNS = ["source_id", "formula", "potential", "min_frequency_meV", "dynamically_stable",
           "mean_log_frequency_meV", "wall_s", "reused", "error"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete phonons``."""
    from workflows.mlip.potentials import DEFAULT_POTENTIAL, POTENTIALS

    p = sub.add_parser(
        "phonons", help="MLIP phonons (SevenNet-0, CHGNet): DOS, lowest frequency, stability",
        description="Harmonic phonons of the given cells (not relaxed) from a universal "
        "interatomic potential through atomate2's force-field phonon flow and phonopy; each "
        "result is stored once per structure and potential and reused on reruns.")
    p.add_argument("structures", nargs="+", metavar="STRUCTURES",
                   help="structure files (CIF, POSCAR, pymatgen JSON ...)")
    p.add_argument("--potential", default=DEFAULT_POTENTIAL, choices=sorted(POTENTIALS),
                   help=f"interatomic potential (default {DEFAULT_POTENTIAL})")
    p.add_argument("--store", help="store directory or YAML spec (default: settings)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes computing at once, one core and one model load each "
                   "(default 1)")
    add_format_argument(p)
    p.set_defaults(func=run)


def row(doc: dict, wall_s: float) -> dict:
    """The summary row of one document (or error) as printed."""
    out = {c: doc.get(c) for c in COLUMNS}
    out["wall_s"] = round(wall_s, 3)
    if "error" not in doc:
        out["compute_wall_s"] = doc.get("wall_s")
        out["max_frequency_meV"] = doc.get("max_frequency_meV")
        out["key"] = doc.get("key")
    return out


def run(args: argparse.Namespace) -> int:
    """Compute (or reuse) every structure's document; summary on stdout, progress on stderr."""
    from workflows.mlip.phonons import run_mlip_phonons

    structures = read_structures(args.structures)
    store = open_store(args.store, write=True)
    try:
        docs = run_mlip_phonons(structures, args.potential, store, progress=progress,
                                workers=args.workers)
    finally:
        store.close()
    rows = [row(doc, doc.get("run_s", 0.0)) for doc in docs]
    print(format_rows(rows, args.format, None if args.format == "json" else COLUMNS))
    return 1 if any(r.get("error") for r in rows) else 0


__all__ = ["register", "run", "UserError"]

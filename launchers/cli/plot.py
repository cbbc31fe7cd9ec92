"""``bete plot a2f`` (α²F, λ(ω), λ(σ)) and ``bete plot phonons`` (MLIP vs DFPT DOS), as PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from launchers.cli.common import UserError, add_preset_argument, open_store, progress
from stores.queries import iter_elph_documents


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete plot``."""
    p = sub.add_parser("plot", help="write figures (PNG)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    a = kinds.add_parser("a2f", help="α²F(ω), λ(ω) and λ(σ) of stored calculations")
    a.add_argument("selector", nargs="*",
                   help="formula, source id or input-hash prefix (default: every completed run)")
    a.add_argument("--store", help="store directory or YAML spec (default: settings)")
    add_preset_argument(a, "only this preset", default=None)
    a.add_argument("--out", default="a2f.png",
                   help="PNG path; with several documents, a directory or a name that gets "
                   "'-<formula>-<hash>' appended")
    a.set_defaults(func=run_a2f)
    ph = kinds.add_parser("phonons", help="MLIP phonon DOS (bete phonons), with the DFPT DOS "
                          "beside it where the store has one for the same structure")
    ph.add_argument("selector", nargs="*",
                    help="formula, source id or key prefix (default: every MLIP document)")
    ph.add_argument("--store", help="store directory or YAML spec (default: settings)")
    ph.add_argument("--potential", help="only this potential (sevennet-0, chgnet)")
    ph.add_argument("--out", default="phonons.png",
                    help="PNG path; with several documents, a directory or a name that gets "
                    "'-<formula>-<potential>-<key>' appended")
    ph.set_defaults(func=run_phonons)


def _matches(doc: dict, selectors: list[str]) -> bool:
    if not selectors:
        return doc.get("status") == "completed"
    keys = {doc.get("formula"), doc.get("source_id")}
    return any(s in keys or str(doc.get("input_hash", "")).startswith(s) for s in selectors)


def run_a2f(args: argparse.Namespace) -> int:
    """Write one PNG per matching document."""
    from launchers.plots import plot_a2f

    crit = {"protocol": args.preset} if args.preset else {}
    store = open_store(args.store, write=False)
    try:
        docs = [d for d in iter_elph_documents(store, crit, load=True)
                if _matches(d, args.selector)]
    finally:
        store.close()
    if not docs:
        raise UserError("no stored calculation matches; see `bete query` for what is there")
    out = Path(args.out)
    for doc in docs:
        if len(docs) == 1 and out.suffix == ".png":
            path = out
        elif out.suffix == ".png":
            path = out.with_name(f"{out.stem}-{doc['formula']}-{doc['input_hash'][:8]}.png")
        else:
            path = out / f"a2f-{doc['formula']}-{doc['input_hash'][:8]}.png"
        try:
            plot_a2f(doc, path)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        progress(f"wrote {path}")
    return 0


def _same_structure(a: dict, b: dict) -> bool:
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

    return StructureMatcher().fit(Structure.from_dict(a), Structure.from_dict(b))


def run_phonons(args: argparse.Namespace) -> int:
    """Write one PNG per matching MLIP phonon document."""
    from launchers.plots import plot_phonons
    from stores.mlip_phonons import iter_mlip_phonons

    crit = {"potential": args.potential} if args.potential else {}
    store = open_store(args.store, write=False)
    try:
        docs = [d for d in iter_mlip_phonons(store, crit)
                if not args.selector or any(s in {d.get("formula"), d.get("source_id")}
                                            or str(d.get("key", "")).startswith(s)
                                            for s in args.selector)]
        pairs = []
        for d in docs:
            dfpt = next((e for e in iter_elph_documents(store, {"formula": d["formula"]},
                                                        load=True)
                         if e.get("phdos") and _same_structure(e["structure"], d["structure"])),
                        None)
            pairs.append((d, dfpt))
    finally:
        store.close()
    if not docs:
        raise UserError("no MLIP phonon document matches; run `bete phonons STRUCTURES...` "
                        "first (`bete query --documents mlip-phonons` lists them)")
    out = Path(args.out)
    for doc, dfpt in pairs:
        tag = f"{doc['formula']}-{doc['potential']}-{doc['key'][:8]}"
        path = (out if len(docs) == 1 and out.suffix == ".png" else
                out.with_name(f"{out.stem}-{tag}.png") if out.suffix == ".png" else
                out / f"phonons-{tag}.png")
        plot_phonons(doc, dfpt, path)
        progress(f"wrote {path}" + (" (with the DFPT DOS)" if dfpt else ""))
    return 0

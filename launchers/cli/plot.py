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
                   help="PNG file written when one document matches; when several match, "
                   "one file each: OUT's name + '-<formula>-<input hash[:8]>.png' (in OUT when "
                   "it is a directory), all listed on stderr")
    a.set_defaults(func=run_a2f)
    ph = kinds.add_parser("phonons", help="MLIP phonon DOS (bete phonons), with the DFPT DOS "
                          "beside it where the store has one for the same structure")
    ph.add_argument("selector", nargs="*",
                    help="formula, source id or key prefix (default: every MLIP document)")
    ph.add_argument("--store", help="store directory or YAML spec (default: settings)")
    ph.add_argument("--potential", help="only this potential (sevennet-0, chgnet)")
    ph.add_argument("--out", default="phonons.png",
                    help="PNG file written when one document matches; when several match, "
                    "one file each: OUT's name + '-<formula>-<potential>-<key[:8]>.png' (in "
                    "OUT when it is a directory), all listed on stderr")
    ph.set_defaults(func=run_phonons)


def _matches(doc: dict, selectors: list[str]) -> bool:
    if not selectors:
        return doc.get("status") == "completed"
    keys = {doc.get("formula"), doc.get("source_id")}
    return any(s in keys or str(doc.get("input_hash", "")).startswith(s) for s in selectors)


def run_a2f(args: argparse.Namespace) -> int:
    """Write one PNG per matching document."""
    from launchers.plots import plot_a2f

    crit = {"preset": args.preset} if args.preset else {}
    store = open_store(args.store, write=False)
    try:
        docs = [d for d in iter_elph_documents(store, crit, load=True)
                if _matches(d, args.selector)]
    finally:
        store.close()
    if not docs:
        raise UserError("no stored calculation matches; see `bete query` for what is there")
    out = Path(args.out)
    _say_several(len(docs), out, "<formula>-<input hash[:8]>", "an input-hash prefix or --preset")
    for doc in docs:
        path = figure_path(out, "a2f", f"{doc['formula']}-{doc['input_hash'][:8]}", len(docs))
        try:
            plot_a2f(doc, path)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        progress(f"wrote {path} ({_describe(doc)})")
    return 0


def figure_path(out: Path, kind: str, tag: str, n: int) -> Path:
    """Where one of ``n`` figures goes.

    One figure: ``out`` itself (a directory gets ``<kind>-<tag>.png`` in it).  Several:
    ``<out's stem>-<tag>.png`` beside ``out``, or ``<kind>-<tag>.png`` in a directory.
    """
    if out.is_dir() or not out.suffix:
        return out / f"{kind}-{tag}.png"
    return out if n == 1 else out.with_name(f"{out.stem}-{tag}{out.suffix}")


def _say_several(n: int, out: Path, tag: str, narrow: str) -> None:
    if n > 1 and out.suffix and not out.is_dir():
        progress(f"{n} documents match: one figure each, named {out.stem}-{tag}{out.suffix} "
                 f"(--out names the file when one matches; narrow the selection with "
                 f"{narrow})")


def _describe(doc: dict) -> str:
    """Which calculation a figure shows: formula, preset + family, input hash."""
    from stores.protocol import derive_identity

    identity, _why = derive_identity(doc)
    which = identity.label() if identity else str(doc.get("preset") or "?")
    return f"{doc.get('formula')}, {which}, input hash {str(doc.get('input_hash'))[:10]}"


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
    _say_several(len(docs), out, "<formula>-<potential>-<key[:8]>",
                 "a key prefix or --potential")
    for doc, dfpt in pairs:
        tag = f"{doc['formula']}-{doc['potential']}-{doc['key'][:8]}"
        path = figure_path(out, "phonons", tag, len(docs))
        plot_phonons(doc, dfpt, path)
        progress(f"wrote {path}" + (" (with the DFPT DOS)" if dfpt else ""))
    return 0

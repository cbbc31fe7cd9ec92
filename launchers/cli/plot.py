"""``bete plot a2f``: α²F(ω) with λ(ω) and λ against broadening, as a PNG."""

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

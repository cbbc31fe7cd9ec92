"""``bete demo``: one active-learning round on the embedded store, from a fresh install.

The shipped ensemble (``betenet_model.pretrained.DEFAULT``; a small one is trained
on the packaged fast-v1 records when it is absent) screens five small candidates
(Al, Pb, Cu, Mg, Si: elements Debian's LDA pseudopotentials cover), the best one by UCB
is verified with the ``fast`` DFPT el-ph flow (real QE; fcc Pb took 15 minutes on 2 cores),
ingested, and the round is reported (table, text, PNG).  Rerunning it reuses every
finished step: the second run takes seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from launchers.cli.common import (
    UserError,
    add_max_atoms_argument,
    add_preset_argument,
    preset_line,
    progress,
)

DEMO_NETWORK = {"mul": 8, "embed_dim": 32, "radial_neurons": 32}
"""Network of the fallback ensemble trained when none is shipped."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete demo``."""
    p = sub.add_parser("demo", help="one active-learning round on small candidates (real QE)",
                       description="Screen five small candidates with the shipped ensemble, "
                       "verify the best with the fast DFPT el-ph flow, ingest and report.")
    p.add_argument("--store", help="store directory or YAML spec (default: settings, "
                   "~/.bete/store)")
    p.add_argument("--candidates", nargs="+", metavar="CANDIDATES",
                   help="candidate structures (default: the five shipped CIFs)")
    p.add_argument("--top-k", type=int, default=1, help="structures verified (default 1)")
    add_preset_argument(p, "DFPT preset (default fast)", validate=True)
    p.add_argument("--override", metavar="JSON_OR_FILE", help="preset overrides")
    p.add_argument("--pseudos", metavar="FAMILY",
                   help="pseudopotential family (default: settings, else Debian's LDA files)")
    add_max_atoms_argument(p)
    p.add_argument("--model", help="ensemble (default: the shipped one)")
    p.add_argument("--out", metavar="PNG",
                   help="report figure (default: bete-demo.png in the store's folder for an "
                        "embedded store, else in the current directory)")
    p.add_argument("--campaign", default="demo", help="campaign name in the store")
    p.set_defaults(func=demo_command)


def default_figure(store: str | None) -> Path:
    """``bete-demo.png`` in an embedded store's folder, else in the current directory."""
    from stores.config import StoreConfigError, resolve_store_spec

    try:
        resolved = resolve_store_spec(store)
    except StoreConfigError as exc:
        raise UserError(str(exc)) from exc
    folder = Path(resolved["path"]) if resolved.get("type") == "embedded" else Path.cwd()
    return folder / FIGURE_NAME


#: File name of the demo's report figure.
FIGURE_NAME = "bete-demo.png"


def demo_command(args: argparse.Namespace) -> int:
    """Run the demo round and print its summary."""
    from launchers.al_plots import plot_campaign, summary_text
    from launchers.cli.elph_args import load_overrides
    from launchers.cli.screen import run_rounds
    from launchers.demo_data import candidates_dir
    from workflows.screening.active_learning import ActiveLearningConfig

    start = time.perf_counter()
    candidates = args.candidates or [str(candidates_dir())]
    try:
        config = ActiveLearningConfig(
            candidates=candidates, rounds=1, top_k=args.top_k, preset=args.preset,
            model=args.model, overrides=load_overrides(args.override), pseudos=args.pseudos,
            acquisition="ucb", campaign=args.campaign, members=3, max_epochs=150,
            max_atoms=args.max_atoms,
            network=dict(DEMO_NETWORK))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    figure = Path(args.out) if args.out else default_figure(args.store)
    progress(preset_line("bete demo", args.preset, "the default: minutes per small "
                         "cell on 2 cores, the protocol the shipped model learnt from"))
    progress(f"bete demo: screening {', '.join(candidates)}; the top {args.top_k} will run "
             f"through the '{args.preset}' DFPT el-ph flow (real QE, several minutes); "
             f"report figure: {figure}")
    rounds = run_rounds(config, args.store, args.verbose)
    print(summary_text(rounds))
    out = plot_campaign(rounds, figure)
    bete = bete_command()
    store = f" --store {args.store}" if args.store else ""
    progress(f"bete demo: done in {time.perf_counter() - start:.0f} s; figure {out}; next: "
             f"`{bete} query{store}`, `{bete} al status --campaign {args.campaign}{store}`, "
             f"`{bete} plot a2f <formula>{store}`")
    return 0


def bete_command() -> str:
    """How to call this installation's ``bete`` from the current shell.

    ``bete`` when the one on PATH is this installation's (an activated venv); else the
    console script next to the running Python (``.venv/bin/bete`` after
    ``scripts/install.sh``), relative to the working directory when it lies below it.
    """
    import shutil
    import sys

    script = Path(sys.executable).parent / "bete"
    if not script.is_file():
        return "bete"
    on_path = shutil.which("bete")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "bete"
    try:
        return str(script.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(script.absolute())

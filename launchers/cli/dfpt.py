"""``bete dfpt run``: DFPT electron-phonon calculations of structure files, here."""

from __future__ import annotations

import argparse

from launchers.cli.cluster import add_submit_parser
from launchers.cli.common import UserError, add_format_argument, format_rows, open_store, progress
from launchers.cli.elph_args import add_elph_arguments, maker_from_args, read_structures

OUTCOME_COLUMNS = ["source_id", "formula", "status", "lambda", "omega_log_K",
                   "tc_allen_dynes_K", "reused", "input_hash", "error"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete dfpt``."""
    p = sub.add_parser("dfpt", help="QE DFPT electron-phonon calculations")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    r = actions.add_parser(
        "run", help="run here (mpirun from the settings) into the store",
        description="Run the DFPT electron-phonon flow (pw.x scf → ph.x → q2r.x → matdyn.x, "
        "α²F at every broadening) for each structure on this machine, writing task documents "
        "into the store. Every structure is checked first; a structure whose inputs the store "
        "already holds is reused; Ctrl-C then the same command resumes.")
    add_elph_arguments(r)
    r.add_argument("--no-reuse", action="store_true",
                   help="recompute even when the store holds the same inputs")
    r.add_argument("--keep-going", action="store_true",
                   help="go on with the next structure after a failed QE run")
    add_format_argument(r)
    r.set_defaults(func=run)
    add_submit_parser(actions)


def run(args: argparse.Namespace) -> int:
    """Run every structure's flow; print a summary (stdout), progress on stderr."""
    from workflows.qe.errors import BeteInputError, QEError, QENotInstalledError
    from workflows.qe.local import run_elph

    structures = read_structures(args.structures)
    maker = maker_from_args(args)
    store = open_store(args.store, write=True)
    try:
        outcomes = run_elph(structures, maker, store, reuse=not args.no_reuse,
                            progress=progress, keep_going=args.keep_going,
                            verbose=args.verbose)
    except (BeteInputError, QEError, QENotInstalledError) as exc:
        raise UserError(str(exc)) from exc
    finally:
        store.close()
    rows = []
    for o in outcomes:
        d = o.document or {}
        rows.append({"source_id": o.source_id, "formula": o.formula,
                     "status": d.get("status", "failed"), "lambda": d.get("lambda_"),
                     "omega_log_K": d.get("omega_log_K"),
                     "tc_allen_dynes_K": d.get("tc_allen_dynes_K"), "reused": o.reused,
                     "input_hash": o.input_hash[:12], "error": o.error})
    print(format_rows(rows, args.format, None if args.format == "json" else OUTCOME_COLUMNS))
    return 1 if any(o.error for o in outcomes) else 0

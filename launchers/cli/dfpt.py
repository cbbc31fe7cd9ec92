"""``bete dfpt run``: DFPT electron-phonon calculations of structure files, here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from launchers.cli.common import UserError, format_rows, open_store, progress

OUTCOME_COLUMNS = ["source_id", "formula", "status", "lambda", "omega_log_K",
                   "tc_allen_dynes_K", "reused", "input_hash", "error"]


def add_elph_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``dfpt run`` and ``dfpt submit``."""
    p.add_argument("structures", nargs="+", metavar="STRUCTURE",
                   help="CIF, POSCAR or pymatgen JSON files (several at once)")
    p.add_argument("--protocol", default="fast",
                   help="preset: fast, standard, accurate, or a preset YAML (default fast)")
    p.add_argument("--store", help="store directory or YAML spec (default: settings)")
    p.add_argument("--pseudos", metavar="FAMILY_DIR_OR_JSON",
                   help="pseudopotential family (default: settings, else Debian's directory)")
    p.add_argument("--override", metavar="JSON_OR_FILE",
                   help="preset overrides as JSON text or a JSON/YAML file, "
                   "e.g. '{\"k_grid\": [4,4,4], \"scf\": {\"mixing_beta\": 0.2}}'")
    p.add_argument("--relax", choices=["relax", "vc-relax"], help="relax the cell first")
    p.add_argument("--fan-out-q", action="store_true",
                   help="one ph.x job per irreducible q point")
    p.add_argument("--keep-scratch", action="store_true",
                   help="keep wavefunctions and ph.x restart files")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete dfpt``."""
    p = sub.add_parser("dfpt", help="QE DFPT electron-phonon calculations")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    r = actions.add_parser("run", help="run here (mpirun from the settings) into the store")
    add_elph_arguments(r)
    r.add_argument("--no-reuse", action="store_true",
                   help="recompute even when the store holds the same inputs")
    r.add_argument("--keep-going", action="store_true",
                   help="go on with the next structure after a failed QE run")
    r.add_argument("--format", choices=["table", "json", "csv"], default="table")
    r.set_defaults(func=run)
    try:  # the cluster module adds `dfpt submit`
        from launchers.cli.cluster import add_submit_parser
    except ImportError:
        return
    add_submit_parser(actions)


def load_overrides(value: str | None) -> dict[str, Any]:
    """Overrides from JSON text or a JSON/YAML file."""
    if not value:
        return {}
    path = Path(value)
    try:
        if path.is_file():
            import yaml

            data = yaml.safe_load(path.read_text())
        else:
            data = json.loads(value)
    except (ValueError, OSError) as exc:
        raise UserError(f"--override: not JSON nor a readable JSON/YAML file: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError("--override must be a JSON object (mapping)")
    return data


def read_structures(paths: list[str]) -> list[tuple[str, Any]]:
    """(source id, Structure) for every file; unreadable files raise UserError."""
    from workflows.qe.errors import BeteInputError
    from workflows.qe.structures import read_structure

    out = []
    for p in paths:
        try:
            out.append((Path(p).stem if Path(p).suffix else Path(p).name, read_structure(p)))
        except (BeteInputError, OSError) as exc:
            raise UserError(str(exc)) from exc
    return out


def maker_from_args(args: argparse.Namespace):  # noqa: ANN201
    """The ElphFlowMaker the arguments describe."""
    from workflows.qe.flows import ElphFlowMaker

    return ElphFlowMaker(preset=args.protocol, overrides=load_overrides(args.override),
                         pseudo_family=args.pseudos, relax=args.relax,
                         fan_out_q=args.fan_out_q, keep_scratch=args.keep_scratch)


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

"""``bete campaign``: a structure set through DFPT el-ph, cheapest first, for hours unattended."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launchers.cli.common import (
    WHY_FAST_FOR_TRAINING,
    UserError,
    add_format_argument,
    add_max_atoms_argument,
    add_preset_argument,
    format_rows,
    open_store,
    preset_line,
    progress,
)
from launchers.cli.elph_args import load_overrides

if TYPE_CHECKING:
    from workflows.qe.campaign import CampaignResult

STRUCTURE_SUFFIXES = (".cif", ".json", ".vasp", ".poscar")
TABLE_COLUMNS = ["outcome", "structures", "new_this_run", "hours"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete campaign``."""
    p = sub.add_parser(
        "campaign", help="run a structure set through DFPT el-ph, cheapest first, resumable",
        description="Run every structure (files, folders, --list) through the DFPT el-ph flow "
        "into the store, cheapest first (atoms, k and q points, bands, cutoff). Resumable: "
        "stored results are reused, finished QE steps are not rerun, known failures are "
        "skipped. Several processes may run the same command on the same store: each "
        "structure is claimed by one. Ends with a table of outcomes by class.")
    p.add_argument("structures", nargs="*", metavar="STRUCTURE",
                   help="structure files or folders of them (CIF, POSCAR, pymatgen JSON)")
    p.add_argument("--list", dest="list_file", metavar="FILE",
                   help="a file naming one structure path per line (# comments)")
    add_preset_argument(p, "fast, standard, accurate, or a preset YAML (default fast)",
                        validate=True)
    p.add_argument("--pseudos", metavar="FAMILY_DIR_OR_JSON",
                   help="pseudopotential family (default: settings, else Debian's directory)")
    p.add_argument("--override", metavar="JSON_OR_FILE", help="preset overrides")
    add_max_atoms_argument(p)
    p.add_argument("--store", help="store directory or YAML spec (default: settings)")
    p.add_argument("--claims", metavar="DIR",
                   help="shared folder of claims and known failures (default <store>/claims "
                   "for a directory store; required for a MongoDB store)")
    p.add_argument("--scratch", metavar="DIR", help="calculation directories (default: "
                   "the scratch_dir setting)")
    p.add_argument("--budget-hours", type=float,
                   help="wall-time budget of this process: QE stops cleanly at its end "
                   "(the rerun resumes) and no structure starts after it")
    p.add_argument("--max-structure-hours", type=float,
                   help="one structure longer than this is 'timed out' (recorded as a failure)")
    p.add_argument("--retry-failed", action="store_true",
                   help="rerun structures that failed before (skipped by default)")
    p.add_argument("--skip-ids", nargs="+", type=int, default=[], metavar="ID",
                   help="more source ids never to compute (107 305 610 689 are always "
                   "skipped: reserved for evaluation)")
    p.add_argument("--lease-minutes", type=float, default=15.0,
                   help="a claim not refreshed for this long is taken over (default 15)")
    p.add_argument("--plan", action="store_true",
                   help="print the order and the estimated costs; run nothing")
    add_format_argument(p)
    p.set_defaults(func=run)


def structure_paths(args: argparse.Namespace) -> list[Path]:
    """Structure files from the arguments and ``--list`` (folders expanded), in order."""
    given = list(args.structures)
    if args.list_file:
        try:
            lines = Path(args.list_file).read_text().splitlines()
        except OSError as exc:
            raise UserError(f"--list {args.list_file}: {exc}") from exc
        given += [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    if not given:
        raise UserError("no structures: give files or folders, or --list FILE")
    paths: list[Path] = []
    for entry in given:
        path = Path(entry).expanduser()
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in STRUCTURE_SUFFIXES
                            or p.name.upper().startswith("POSCAR"))
        elif path.is_file():
            paths.append(path)
        else:
            raise UserError(f"{path} does not exist; fix the path (or the --list file)")
    return list(dict.fromkeys(paths))


def claims_dir(args: argparse.Namespace) -> Path:
    """The claim folder: ``--claims``, else ``<store>/claims`` of a directory store."""
    from stores.config import resolve_store_spec

    if args.claims:
        return Path(args.claims).expanduser()
    spec = resolve_store_spec(args.store)
    if spec.get("type") != "embedded":
        raise UserError("--claims DIR is needed with a MongoDB store: a folder every "
                        "campaign process can reach")
    return Path(spec["path"]) / "claims"


def run(args: argparse.Namespace) -> int:
    """Plan, run, print the outcome table (stdout) and progress (stderr)."""
    from workflows.qe.campaign import campaign_from_paths, outcome_table
    from workflows.qe.errors import QENotInstalledError

    paths = structure_paths(args)
    progress(preset_line("campaign", args.preset, WHY_FAST_FOR_TRAINING))
    try:
        result = campaign_from_paths(
            paths, preset=args.preset, overrides=load_overrides(args.override),
            pseudo_family=args.pseudos, scratch_dir=args.scratch, max_atoms=args.max_atoms,
            skip_ids=args.skip_ids, plan_only=args.plan, claims=lambda: claims_dir(args),
            store=lambda: open_store(args.store, write=True),
            lease_s=args.lease_minutes * 60,
            budget_s=args.budget_hours * 3600 if args.budget_hours else None,
            structure_limit_s=(args.max_structure_hours * 3600
                               if args.max_structure_hours else None),
            retry_failed=args.retry_failed, progress=progress, verbose=args.verbose)
    except QENotInstalledError as exc:
        raise UserError(str(exc)) from exc
    if result.outcomes is None:
        print(format_rows(plan_rows(result), args.format, None if args.format == "json" else
                          ["order", "source_id", "formula", "atoms", "k_grid", "q_grid", "cost",
                           "input_hash"]))
        return 0
    table = outcome_table(result.outcomes)
    if args.format == "table":
        print(format_rows(table, "table", TABLE_COLUMNS))
    else:
        print(format_rows([*table, *(o.row() for o in result.outcomes)]
                          if args.format == "json" else table, args.format,
                          None if args.format == "json" else TABLE_COLUMNS))
    return 0


def plan_rows(result: CampaignResult) -> list[dict[str, Any]]:
    """``--plan`` rows: the planned structures in order, then the left-out ones."""
    rows: list[dict[str, Any]] = [
        {"order": i, "source_id": p.source_id, "formula": p.formula,
         "atoms": len(p.input_set.structure) if p.input_set else None,
         "k_grid": p.input_set.k_grid if p.input_set else None,
         "q_grid": p.input_set.q_grid if p.input_set else None,
         "cost": f"{p.cost:.3g}", "input_hash": p.key[:12]}
        for i, p in enumerate(result.planned, 1)]
    rows += [{"order": None, "source_id": o.source_id, "formula": o.formula,
              "cost": o.outcome, "input_hash": o.message} for o in result.left_out]
    return rows

"""The structure and preset arguments ``bete dfpt run`` and ``bete dfpt submit`` share.

Its own module so that ``dfpt`` (which adds ``submit`` from ``cluster``) and ``cluster``
both import it without importing each other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from launchers.cli.common import UserError, add_max_atoms_argument, add_preset_argument


def add_elph_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``dfpt run`` and ``dfpt submit``."""
    p.add_argument("structures", nargs="+", metavar="STRUCTURE",
                   help="CIF, POSCAR or pymatgen JSON files (several at once)")
    add_preset_argument(p, "fast, standard, accurate, or a preset YAML (default fast)",
                        validate=True)
    p.add_argument("--store", help="store directory or YAML spec (default: settings)")
    p.add_argument("--pseudos", metavar="FAMILY_DIR_OR_JSON",
                   help="pseudopotential family (default: settings, else Debian's directory)")
    p.add_argument("--override", metavar="JSON_OR_FILE",
                   help="preset overrides as JSON text or a JSON/YAML file, "
                   "e.g. '{\"k_grid\": [4,4,4], \"scf\": {\"mixing_beta\": 0.2}}'")
    add_max_atoms_argument(p)
    p.add_argument("--relax", choices=["relax", "vc-relax"], help="relax the cell first")
    p.add_argument("--fan-out-q", action="store_true",
                   help="one ph.x job per irreducible q point")
    p.add_argument("--keep-scratch", action="store_true",
                   help="keep wavefunctions and ph.x restart files")


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
    """(source id, Structure) for every file, each checked before any calculation starts.

    Unreadable files and structures refused by the shared check
    (:func:`workflows.qe.structures.check_structure`) raise UserError.
    """
    from workflows.qe.errors import BeteInputError
    from workflows.qe.structures import load_structure

    out = []
    for p in paths:
        try:
            out.append((Path(p).stem if Path(p).suffix else Path(p).name, load_structure(p)))
        except (BeteInputError, OSError) as exc:
            raise UserError(str(exc)) from exc
    return out


def maker_from_args(args: argparse.Namespace):
    """The ElphFlowMaker the arguments describe."""
    from workflows.qe.flows import ElphFlowMaker

    return ElphFlowMaker.from_preset(preset=args.preset, overrides=load_overrides(args.override),
                                     pseudo_family=args.pseudos, relax=args.relax,
                                     max_atoms=args.max_atoms, fan_out_q=args.fan_out_q,
                                     keep_scratch=args.keep_scratch)

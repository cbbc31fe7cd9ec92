"""Helpers shared by the sub-command modules: errors, output formats, progress."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


def format_rows(rows: Sequence[Mapping[str, Any]], fmt: str,
                columns: Sequence[str] | None = None) -> str:
    """Render rows as ``table`` (aligned text), ``json`` (one array) or ``csv``."""
    if fmt == "json":
        return json.dumps(list(rows), indent=1, default=_json_default)
    cols = list(columns) if columns else _columns(rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c) for c in cols})
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise UserError(f"unknown format {fmt!r}; use table, json or csv")
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols and not isinstance(row[k], list | dict)]
    return cols


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return str(obj)


def rounded(value: Any, digits: int = 3) -> str:
    """A number for a message: ``digits`` significant digits (0.0369); "-" for None."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "-" if value is None else str(value)


def progress(message: str) -> None:
    """One progress line on stderr (stdout stays machine-readable)."""
    print(message, file=sys.stderr, flush=True)


def open_store(spec: str | None, *, write: bool):
    """Connect the JobStore a ``--store`` value names; user errors become UserError.

    Parameters
    ----------
    spec
        ``--store`` value (None = the settings' store).
    write
        True for commands that add documents: a missing embedded store is
        created (logged once).  False for reading commands: a missing store is
        an error naming the path, and an embedded store is opened read-only
        (nothing is written into its folder; read-only file systems work).
    """
    from stores.config import load_job_store

    try:
        store = load_job_store(spec, create=write, read_only=not write)
        store.connect()
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc
    return store


def parse_network(items: list[str] | None) -> dict[str, Any]:
    """``--network KEY=VALUE`` items as a dict (values parsed as JSON when they are JSON)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--network takes KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def preset_name(value: str) -> str:
    """An argparse ``type``: ``value`` when it names a preset that loads, else a parse error.

    Checked while the arguments are parsed, so a typo stops the command before it opens
    (and rewrites the set-up files of) a store or computes anything.
    """
    import yaml

    from workflows.qe.errors import BeteInputError
    from workflows.qe.preset_rules import load_preset

    try:
        load_preset(value)
    except (BeteInputError, yaml.YAMLError, OSError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


DEFAULT_PRESET = "fast"
"""The preset of every DFPT-running command unless ``--preset`` says otherwise."""


def add_preset_argument(p: argparse.ArgumentParser, help_text: str,
                        default: str | None = DEFAULT_PRESET, validate: bool = False) -> None:
    """``--preset NAME`` (fast, standard, accurate or a preset YAML).

    ``validate``: the preset must load (commands that run DFPT with it); a filter of
    stored documents (``bete query``) takes any name.  ``--protocol`` stays a working,
    hidden alias: "protocol" now names the full identity of a calculation (preset,
    pseudopotential family, overrides, QE version), not the preset.
    """
    kind = preset_name if validate else str
    p.add_argument("--preset", default=default, type=kind, help=help_text)
    p.add_argument("--protocol", dest="preset", default=argparse.SUPPRESS, type=kind,
                   help=argparse.SUPPRESS)


def add_protocol_fingerprint_argument(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--protocol-fingerprint FP`` (a protocol fingerprint or its prefix).

    ``--fingerprint`` stays a working, hidden alias; the name says which fingerprint,
    since a structure fingerprint is another thing (``workflows.qe.sets``).
    """
    p.add_argument("--protocol-fingerprint", metavar="FP", help=help_text)
    p.add_argument("--fingerprint", dest="protocol_fingerprint", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def add_max_atoms_argument(p: argparse.ArgumentParser) -> None:
    """``--max-atoms N``: the largest primitive cell the DFPT flow takes.

    The messages about too large a cell name it, so every command that runs DFPT has it.
    """
    p.add_argument("--max-atoms", type=int, metavar="N",
                   help="largest primitive cell computed with DFPT (default: the max_atoms "
                   "setting, BETE_MAX_ATOMS, 16)")


WHY_FAST_FOR_TRAINING = ("the default: the protocol of the shipped fast-v1 training data and "
                         "of the shipped models, so verified cells can retrain them; use "
                         "--preset standard for numbers to publish")


def preset_line(command: str, preset: str, why_default: str) -> str:
    """The line a DFPT-running command starts with: which preset, what it is, and why."""
    from workflows.qe.preset_rules import describe_preset

    why = why_default if preset == DEFAULT_PRESET else "chosen with --preset"
    return f"{command}: DFPT preset {describe_preset(preset)}; {why}"


def add_format_argument(p: argparse.ArgumentParser,
                        choices: Sequence[str] = ("table", "json", "csv"),
                        default: str = "table",
                        help_text: str = "output format on stdout (progress goes to stderr)"
                        ) -> None:
    """``--format`` of a command printing rows (see :func:`format_rows`)."""
    p.add_argument("--format", choices=list(choices), default=default, help=help_text)

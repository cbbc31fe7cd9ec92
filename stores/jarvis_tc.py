"""Importer for the ``jarvis-tc`` layout: Tc-only training rows (no α²F).

A folder holding ``records.jsonl``, one JSON object a line with ``jid`` (identifier),
``tc_K`` (float, kelvin) and ``poscar`` (VASP POSCAR text); other files and fields are
ignored. Each usable line becomes a :class:`stores.datasets.TrainingRecord` with
``tc_K`` set and no spectrum. A line that cannot be used (not JSON, no ``tc_K`` or not a
number ≥ 0, no ``jid``, a repeated ``jid``, an unreadable POSCAR) is dropped and reported
with its line number and reason, never silently.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Collection
from pathlib import Path

from pymatgen.io.vasp import Poscar

from stores.training_record import TrainingRecord

logger = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
MAX_LISTED = 10
"""Dropped lines named one by one in the report (the rest are counted)."""
PACKAGED_NAME = "jarvis-tc"
"""``--data`` value of the packaged copy (:func:`packaged_jarvis_tc_dir`)."""


def packaged_jarvis_tc_dir() -> Path:
    """Folder of the jarvis-tc rows shipped with the project (package data).

    The 496 rows of the shared ``datasets/jarvis-tc``, unchanged; its README says where they
    come from.

    The default ensemble trained on 397 of them; ``bete al run`` keeps those Tc-only rows in
    later rounds, so they must not depend on a folder outside the project.
    """
    from importlib import resources

    return Path(str(resources.files("stores") / "data" / PACKAGED_NAME))


def rows_by_id(ids: Collection[str], folder: str | os.PathLike[str] | None = None,
               ) -> tuple[list[TrainingRecord], list[str]]:
    """The rows of ``ids`` in a jarvis-tc folder, in file order, and the ids not found there.

    ``folder`` None: the packaged copy.
    """
    wanted = set(ids)
    rows = [r for r in load_jarvis_tc(folder or packaged_jarvis_tc_dir(), report=lambda _m: None)
            if r.id in wanted]
    found = {r.id for r in rows}
    return rows, sorted(wanted - found)


def is_jarvis_tc_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding ``records.jsonl``."""
    return (Path(path) / RECORDS_FILE).is_file()


def _parse_line(text: str, source: str) -> TrainingRecord:
    """One line as a record; ValueError with the reason when it cannot be used."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    jid = data.get("jid")
    if not jid:
        raise ValueError("no jid")
    if data.get("tc_K") is None:
        raise ValueError(f"{jid}: no tc_K")
    try:
        tc = float(data["tc_K"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{jid}: tc_K {data['tc_K']!r} is not a number") from exc
    if not math.isfinite(tc) or tc < 0:
        raise ValueError(f"{jid}: tc_K {tc} is not a finite number >= 0")
    text_poscar = data.get("poscar")
    if not isinstance(text_poscar, str) or not text_poscar.strip():
        raise ValueError(f"{jid}: no poscar text")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Poscar.from_str(text_poscar).structure
    except Exception as exc:  # pymatgen raises many types for broken POSCAR text
        raise ValueError(f"{jid}: unreadable POSCAR ({type(exc).__name__}: {exc})") from exc
    if len(structure) == 0:
        raise ValueError(f"{jid}: POSCAR has no sites")
    return TrainingRecord(id=str(jid), structure=structure, tc_K=tc,
                          labels={"tc_K": tc}, source=source)


def load_jarvis_tc(folder: str | os.PathLike[str],
                   report: Callable[[str], None] | None = None) -> list[TrainingRecord]:
    """Tc-only records of a jarvis-tc folder.

    Parameters
    ----------
    folder : path
        Holds ``records.jsonl``.
    report : callable, optional
        Receives one summary line when lines were dropped (how many, which, why);
        default: a logged warning.

    Returns
    -------
    list of TrainingRecord
        In file order, each with ``tc_K`` and no spectrum.

    Raises
    ------
    ValueError
        No ``records.jsonl``, or no usable line in it.
    """
    path = Path(folder) / RECORDS_FILE
    if not path.is_file():
        raise ValueError(f"{folder} holds no {RECORDS_FILE} (the jarvis-tc layout)")
    records: list[TrainingRecord] = []
    seen: set[str] = set()
    dropped: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = _parse_line(line, f"{path}:{number}")
            if rec.id in seen:
                raise ValueError(f"{rec.id}: repeated jid (first occurrence kept)")
        except ValueError as exc:
            dropped.append(f"line {number}: {exc}")
            continue
        seen.add(rec.id)
        records.append(rec)
    if dropped:
        listed = "; ".join(dropped[:MAX_LISTED])
        more = f"; and {len(dropped) - MAX_LISTED} more" if len(dropped) > MAX_LISTED else ""
        message = (f"{path}: dropped {len(dropped)} of {len(dropped) + len(records)} lines "
                   f"({listed}{more})")
        (report or logger.warning)(message)
    if not records:
        raise ValueError(f"{path} has no usable line (each needs jid, tc_K and poscar)")
    return records

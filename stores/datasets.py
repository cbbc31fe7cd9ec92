"""Training sets for BETE-NET: importers, the store query and reproducible splits.

Three sources give the same :class:`TrainingRecord` rows:

- a folder of ``fast-v1`` JSON records (:func:`load_fast_v1`; the project
  carries a copy, :func:`packaged_fast_v1_dir`);
- the BETE-NET ``database.json`` table (:func:`load_betenet_database`);
- the project's store: completed, dynamically stable electron-phonon task
  documents of one protocol (:func:`load_store_records`, schema
  ``stores.schemas.ElphTaskDocument``).

:func:`load_records` picks the importer from what a path is.  Splits are
seeded and independent of the order rows arrive in (:func:`split_records`),
or follow the BETE-NET release's index lists (:func:`split_by_index_files`).

Frequencies are in meV.  This module imports neither the flows nor the
launchers; moments are not recomputed here (the labels a source carries are
kept as given, with their units in the key).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from stores.constants import DEFAULT_REFERENCE_SIGMA_RY, DEFAULT_STABILITY_THRESHOLD_MEV
from stores.jarvis_tc import is_jarvis_tc_dir, load_jarvis_tc
from stores.protocol import (
    FAST_V1_FINGERPRINT,
    FAST_V1_IDENTITY,
    derive_identity,
    record_fingerprint,
)
from stores.training_record import TrainingRecord

logger = logging.getLogger(__name__)

FAST_V1_REFERENCE_SIGMA_INDEX = 3
"""Broadening index of the fast-v1 reference label (σ = 0.020 Ry)."""
RESERVED_BETE_NET_IDS = (107, 305, 610, 689)
"""Structures of ``structures/bete-net`` kept for evaluation: never computed nor trained on."""
SITE_DOS_FULL, SITE_DOS_COARSE = SITE_DOS_SOURCES = ("full", "coarse")
"""database.json site DOS: the full run (FPD) or the 2×2×2-interpolated one (CPD); the
``site_dos`` names of :data:`betenet_model.variants.VARIANTS` (which ``stores`` may not import;
tests/test_constants.py ties the two)."""


# --------------------------------------------------------------------------- fast-v1
def packaged_fast_v1_dir() -> Path:
    """Folder of the fast-v1 records shipped with the project (package data)."""
    return Path(str(resources.files("stores") / "data" / "fast-v1"))


def _field(data: Any, key: str, kinds: type | tuple[type, ...], where: str = "") -> Any:
    """``data[key]`` checked against ``kinds``; a ValueError naming the field otherwise."""
    name = f"{where}{key}"
    if not isinstance(data, dict):
        raise ValueError(f"{where.rstrip('.') or 'the record'} is {type(data).__name__}, "
                         "expected a JSON object")
    if key not in data:
        raise ValueError(f"field {name!r} is missing")
    value = data[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in (
            kinds if isinstance(kinds, tuple) else (kinds,)):
        names = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        shown = json.dumps(value)[:40] if not isinstance(value, str) else repr(value[:40])
        raise ValueError(f"field {name!r} is {type(value).__name__} {shown}, expected {names}")
    return value


def _numbers(data: dict[str, Any], key: str, where: str = "") -> np.ndarray:
    """A list of numbers (any nesting) as a float array; a ValueError naming the field."""
    values = _field(data, key, list, where)
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"field {where}{key!r} must hold numbers only") from None


_NUMBER = (int, float)


def fast_v1_record(data: dict[str, Any], sigma_index: int = FAST_V1_REFERENCE_SIGMA_INDEX,
                   source: str = "") -> TrainingRecord:
    """One fast-v1 JSON record (already parsed) as a :class:`TrainingRecord`.

    Parameters
    ----------
    data : dict
        The record (see PROTOCOL-fast-v1.md); must have ``status == "ok"``.
    sigma_index : int
        Which broadening is the label (3 = σ 0.020 Ry, the reference).
    source : str
        Recorded in :attr:`TrainingRecord.source`.

    Raises
    ------
    ValueError
        Naming the field that is missing or of the wrong type (``a2F[3].lambda_``).
    """
    if _field(data, "status", str) != "ok":
        raise ValueError(f"record {data.get('id')} has status {data.get('status')!r}, not 'ok'")
    ident = _field(data, "id", (str, int))
    if sigma_index == FAST_V1_REFERENCE_SIGMA_INDEX and "reference_sigma_index" in data:
        sigma_index = int(data["reference_sigma_index"])  # exported records name it
    broadenings = _field(data, "a2F", list)
    if not 0 <= sigma_index < len(broadenings):
        raise ValueError(f"record {ident} has {len(broadenings)} broadenings; "
                         f"sigma index {sigma_index} does not exist")
    where = f"a2F[{sigma_index}]."
    ref = broadenings[sigma_index]
    if not isinstance(ref, dict):
        raise ValueError(f"field 'a2F[{sigma_index}]' is {type(ref).__name__}, expected an "
                         "object with sigma_Ry, a2F, lambda_, ...")
    labels = {k: float(_field(ref, k, _NUMBER, where)) for k in
              ("lambda_", "omega_log_K", "omega_2_K", "tc_allen_dynes_K") if k in ref}
    sigma = _field(ref, "sigma_Ry", _NUMBER, where) if "sigma_Ry" in ref else float("nan")
    labels["sigma_Ry"] = float(sigma)
    try:
        structure = Structure.from_dict(_field(data, "structure", dict))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if str(exc).startswith("field "):
            raise
        raise ValueError(f"field 'structure' is not a pymatgen Structure ({type(exc).__name__}: "
                         f"{exc})") from None
    fingerprint = record_fingerprint(data)
    site = data.get("phdos_site")
    formula = data.get("formula")
    return TrainingRecord(
        id=str(ident),
        structure=structure,
        frequencies_meV=_numbers(data, "a2F_frequency_meV"),
        a2f=_numbers(ref, "a2F", where),
        phdos_frequencies_meV=(_numbers(data, "phdos_frequency_meV")
                               if site is not None else None),
        site_dos=_numbers(data, "phdos_site") if site is not None else None,
        labels=labels,
        formula=str(formula or structure.composition.reduced_formula),
        source=source or f"fast-v1:{ident}",
        min_frequency_meV=(float(_field(data, "min_frequency_meV", _NUMBER))
                           if data.get("min_frequency_meV") is not None else None),
        protocol_fingerprint=fingerprint,
        protocol_label=(FAST_V1_IDENTITY.label() if fingerprint == FAST_V1_FINGERPRINT
                        else str(data.get("protocol_label")
                                 or "unknown: the record names no protocol fingerprint")),
    )


def read_json_file(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a ValueError naming the file, line and column when it is not JSON."""
    path = Path(path)
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ("the file ends early (truncated): restore it or move it out of the folder"
                if exc.pos >= len(text.rstrip()) else "fix or remove the file")
        raise ValueError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} "
                         f"({exc.msg}); {hint}") from None


def load_fast_v1(directory: str | os.PathLike[str] | None = None,
                 sigma_index: int = FAST_V1_REFERENCE_SIGMA_INDEX,
                 drop_unstable: bool = True,
                 stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV,
                 report: Callable[[str], None] | None = None,
                 ) -> list[TrainingRecord]:
    """Read every usable fast-v1 record of a folder.

    Parameters
    ----------
    directory : path, optional
        Folder of ``<index>.json`` records; default: the packaged copy.
    sigma_index : int
        Broadening used as the label (3 = σ 0.020 Ry).
    drop_unstable : bool
        Leave out records whose ``min_frequency_meV`` is below the threshold.
    stability_threshold_meV : float
        Dynamical-stability threshold (meV).
    report : callable, optional
        Receives one line naming the records left out and why (default: logged at info
        level).

    Returns
    -------
    list of TrainingRecord
        Sorted by integer id; failed records are skipped (logged).
    """
    folder = Path(directory) if directory is not None else packaged_fast_v1_dir()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of fast-v1 JSON records")
    records = []
    dropped: list[str] = []
    for path in sorted(folder.glob("*.json")):
        data = read_json_file(path)
        if not isinstance(data, dict) or data.get("status") != "ok":
            status = data.get("status") if isinstance(data, dict) else None
            dropped.append(f"{path.name} status {status}")
            continue
        try:
            rec = fast_v1_record(data, sigma_index, source=str(path))
        except ValueError as exc:
            raise ValueError(f"{path} (record {data.get('id')!r}): {exc}") from None
        unstable = (data["dynamically_stable"] is False if "dynamically_stable" in data
                    else rec.min_frequency_meV is not None
                    and rec.min_frequency_meV < stability_threshold_meV)
        if drop_unstable and unstable:
            dropped.append(f"{path.name} ({rec.formula}) dynamically unstable, lowest "
                           f"frequency {rec.min_frequency_meV:.2f} meV")
            continue
        records.append(rec)
    if dropped:
        (report or logger.info)(f"{folder}: left out {len(dropped)} record(s): "
                                + "; ".join(dropped))
    if not records:
        raise ValueError(f"{folder} holds no usable fast-v1 record (status ok)")
    return sorted(records, key=_id_key)


def is_fast_v1_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding at least one fast-v1-like JSON record."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    for candidate in folder.glob("*.json"):
        try:
            data = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "a2F_frequency_meV" in data or (
                isinstance(data, dict) and data.get("status") == "failed" and "protocol" in data):
            return True
    return False


# --------------------------------------------------------------------------- database.json
def load_betenet_database(path: str | os.PathLike[str],
                          structures_dir: str | os.PathLike[str],
                          site_dos: str = SITE_DOS_FULL) -> list[TrainingRecord]:
    """Read the BETE-NET ``database.json`` table (layout: ``docs/dev/architecture.md``).

    Parameters
    ----------
    path : path
        The ``database.json`` file (a pandas ``read_json`` table whose integer
        index names the CIF file).
    structures_dir : path
        Folder holding ``<index>.cif`` (``structures/bete-net``).
    site_dos : {"full", "coarse"}
        Which site-projected phonon DOS to attach: the full run
        (``Site_Proj_PhDOS`` on ``PhFreq_meV``, FPD) or the 2×2×2-interpolated
        one (``Ph_2x2x2_interpolated_*``, CPD).

    Returns
    -------
    list of TrainingRecord
        One per row left by ``dropna()``; labels ``lambda_``, ``omega_log_meV``
        (``w_log``) and ``omega_2_meV`` (√``w_sq``).
    """
    import pandas as pd

    if site_dos not in SITE_DOS_SOURCES:
        raise ValueError(f"site_dos must be one of {SITE_DOS_SOURCES}, got {site_dos!r}")
    table = pd.read_json(Path(path)).dropna()
    folder = Path(structures_dir)
    if not folder.is_dir():
        raise ValueError(f"structures folder {folder} does not exist; give the folder of "
                         "<index>.cif files that goes with database.json")
    freq_col, dos_col = (("PhFreq_meV", "Site_Proj_PhDOS") if site_dos == SITE_DOS_FULL else
                         ("Ph_2x2x2_interpolated_Freq_meV",
                          "Ph_2x2x2_interpolated_Site_Proj_DOS"))
    records = []
    for index, row in table.iterrows():
        cif = folder / f"{int(index)}.cif"
        if not cif.is_file():
            raise ValueError(f"row {index} of {path}: {cif} is missing")
        structure = Structure.from_file(cif)

        def column(name: str, scalar: bool = False, row: Any = row, index: Any = index) -> Any:
            try:
                return float(row[name]) if scalar else np.asarray(row[name], dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"{path} row {index}: column {name!r} holds "
                                 f"{str(row[name])[:40]!r}, expected numbers") from None

        labels = {"lambda_": column("lambda", True), "omega_log_meV": column("w_log", True),
                  "omega_2_meV": math.sqrt(max(column("w_sq", True), 0.0))}
        records.append(TrainingRecord(
            id=str(int(index)),
            structure=structure,
            frequencies_meV=column("Freq_meV"),
            a2f=column("a2F"),
            phdos_frequencies_meV=column(freq_col),
            site_dos=np.atleast_2d(column(dos_col)),
            labels=labels,
            formula=str(row.get("comp") or structure.composition.reduced_formula),
            source=f"{Path(path).name}:{int(index)}",
        ))
    return sorted(records, key=_id_key)


# --------------------------------------------------------------------------- store
TRAINING_TASK_CRITERIA = {"status": "completed", "dynamically_stable": True}
"""Task-document fields (besides ``doc_type`` and ``preset``) a training row must have."""


def elph_task_criteria(preset: str | None) -> dict[str, Any]:
    """Output-field criteria for completed, dynamically stable el-ph task documents.

    Keys are task-document field names (``stores.queries.iter_elph_documents``
    adds the ``output.`` prefix and ``doc_type == "elph_task"``).

    Parameters
    ----------
    preset : str, optional
        Preset name, e.g. ``"fast"``; ``None`` = any (documents of schema 1.0 match too).
    """
    crit: dict[str, Any] = dict(TRAINING_TASK_CRITERIA)
    if preset is not None:
        crit["preset"] = preset
    return crit


def _reference_spectrum(doc: dict[str, Any]) -> tuple[list[float], list[float]]:
    ref = doc.get("a2f_reference")
    if ref:
        return ref["frequencies_meV"], ref["a2f"]
    spectra = doc.get("a2f_spectra") or []
    if not spectra:
        raise ValueError(f"task document {doc.get('formula')} has no α²F spectra; "
                         "was it loaded with its blobs?")
    sigma = doc.get("reference_sigma_Ry")
    sigma = DEFAULT_REFERENCE_SIGMA_RY if sigma is None else float(sigma)
    spec = min(spectra, key=lambda s: abs(float(s["sigma_Ry"]) - sigma))
    return spec["frequencies_meV"], spec["a2f"]


def task_document_record(doc: dict[str, Any], source: str = "store") -> TrainingRecord:
    """A :class:`TrainingRecord` from one electron-phonon task document.

    Reads ``structure``, the reference α²F (``a2f_reference.frequencies_meV`` /
    ``.a2f`` when present, else the entry of ``a2f_spectra`` at
    ``reference_sigma_Ry``), ``phdos.frequencies_meV`` / ``phdos.site_dos`` and
    the headline labels ``lambda_``, ``omega_log_K``, ``omega_2_K``,
    ``tc_allen_dynes_K``.  This is the one place to adapt when the
    task-document schema (``stores.schemas.ElphTaskDocument``) changes.
    """
    structure = doc["structure"]
    if isinstance(structure, dict):
        structure = Structure.from_dict(structure)
    freq, a2f = _reference_spectrum(doc)
    phdos = doc.get("phdos") or {}
    labels = {key: float(doc[key]) for key in
              ("lambda_", "omega_log_K", "omega_2_K", "tc_allen_dynes_K")
              if isinstance(doc.get(key), int | float)}
    site = phdos.get("site_dos")
    ident = doc.get("source_id") or doc.get("input_hash") or doc.get("_job_uuid")
    identity, why_not = derive_identity(doc)
    return TrainingRecord(
        id=str(ident),
        structure=structure,
        frequencies_meV=np.asarray(freq, dtype=float),
        a2f=np.asarray(a2f, dtype=float),
        phdos_frequencies_meV=(np.asarray(phdos["frequencies_meV"], dtype=float)
                               if site else None),
        site_dos=np.asarray(site, dtype=float) if site else None,
        labels=labels,
        formula=str(doc.get("formula") or ""),
        source=source,
        min_frequency_meV=doc.get("min_frequency_meV"),
        protocol_fingerprint=identity.fingerprint() if identity else None,
        protocol_label=identity.label() if identity else f"unknown: {why_not}",
    )


def protocol_groups(records: Iterable[TrainingRecord]) -> dict[str | None, list[TrainingRecord]]:
    """Records grouped by protocol fingerprint (None: unknown), largest group first."""
    groups: dict[str | None, list[TrainingRecord]] = {}
    for rec in records:
        groups.setdefault(rec.protocol_fingerprint, []).append(rec)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def describe_groups(groups: dict[str | None, list[TrainingRecord]]) -> str:
    """``fingerprint (n rows: label)`` for each group, for messages."""
    return "; ".join(f"{fp or 'unknown'} ({len(rows)} rows: {rows[0].protocol_label})"
                     for fp, rows in groups.items())


class MixedProtocolsError(ValueError):
    """Rows of several protocols where one was expected; ``groups`` maps fingerprint → rows."""

    def __init__(self, message: str, groups: dict[str | None, list[TrainingRecord]]) -> None:
        super().__init__(message)
        self.groups = groups


def select_protocol(records: Sequence[TrainingRecord], protocol_fingerprint: str | None = None,
                    what: str = "the data") -> list[TrainingRecord]:
    """The rows of one protocol fingerprint: never a mix.

    Parameters
    ----------
    records
        Rows of any number of protocols.
    protocol_fingerprint
        The fingerprint (or a prefix of it) to keep; None = the only one there is.
    what
        Names the source in messages.

    Raises
    ------
    MixedProtocolsError
        When ``protocol_fingerprint`` is None and the rows hold several protocols (the
        message lists them).
    ValueError
        When no row has ``protocol_fingerprint``.
    """
    groups = protocol_groups(records)
    if protocol_fingerprint is None:
        if len(groups) > 1:
            raise MixedProtocolsError(
                f"{what} holds rows of {len(groups)} protocols, which are never trained on "
                f"together: {describe_groups(groups)}; choose one with "
                "--protocol-fingerprint", groups)
        return list(records)
    chosen = [fp for fp in groups if fp and fp.startswith(protocol_fingerprint)]
    if len(chosen) != 1:
        raise ValueError(f"{what} has {'no' if not chosen else 'several'} protocol with "
                         f"fingerprint {protocol_fingerprint!r}; it holds: "
                         f"{describe_groups(groups)}")
    return groups[chosen[0]]


def load_store_records(store: Any, preset: str | None = "fast",
                       protocol_fingerprint: str | None = None) -> list[TrainingRecord]:
    """Completed, dynamically stable electron-phonon tasks of one protocol in a JobStore.

    Parameters
    ----------
    store : jobflow.JobStore
        E.g. from :func:`stores.config.load_job_store`; the α²F and DOS blobs
        are loaded from its ``data`` store.
    preset : str, optional
        Preset name; ``None`` = any preset.
    protocol_fingerprint : str, optional
        Protocol fingerprint (or prefix); None = the only one the matching rows hold.

    Returns
    -------
    list of TrainingRecord
        One per calculation (newest document per input hash), sorted by id.

    Raises
    ------
    ValueError
        Rows of several fingerprints and none named (see :func:`select_protocol`).
    """
    from stores.queries import iter_elph_documents

    store.connect()
    try:
        docs = list(iter_elph_documents(store, elph_task_criteria(preset), load=True))
    finally:
        store.close()
    records = [task_document_record(doc, source=f"store:{doc.get('_job_uuid', '')}")
               for doc in docs]
    return sorted(select_protocol(records, protocol_fingerprint, "the store"), key=_id_key)


# --------------------------------------------------------------------------- dispatch
def load_records(source: str | os.PathLike[str], *,
                 structures_dir: str | os.PathLike[str] | None = None,
                 preset: str | None = "fast", drop_unstable: bool = True,
                 site_dos: str = SITE_DOS_FULL,
                 report: Callable[[str], None] | None = None,
                 protocol_fingerprint: str | None = None) -> list[TrainingRecord]:
    """Training records from a fast-v1 or jarvis-tc folder, a ``database.json`` or a store.

    Parameters
    ----------
    source : path
        A folder of fast-v1 JSON records; a folder holding ``records.jsonl`` (jarvis-tc
        layout, Tc-only rows: :func:`stores.jarvis_tc.load_jarvis_tc`); a ``.json`` file in
        the BETE-NET
        ``database.json`` layout; otherwise a store spec (directory of an
        embedded store or a YAML file).
    structures_dir : path, optional
        CIF folder for ``database.json`` (default: ``structures/bete-net``
        next to the file's folder, when it exists).
    preset : str, optional
        Preset of the store's task documents (None: any).
    drop_unstable : bool
        fast-v1: leave out dynamically unstable records.
    site_dos : {"full", "coarse"}
        database.json: which site DOS to attach.
    report : callable, optional
        Receives a line naming the rows an importer dropped and why (default: a warning).
    protocol_fingerprint : str, optional
        Protocol fingerprint (or prefix) to train on; None = the only one the
        source holds (several → ValueError listing them).
    """
    path = Path(source).expanduser()
    if path.is_dir() and is_jarvis_tc_dir(path):
        return load_jarvis_tc(path, report=report)
    if path.is_dir() and is_fast_v1_dir(path):
        return select_protocol(load_fast_v1(path, drop_unstable=drop_unstable, report=report),
                               protocol_fingerprint, str(path))
    if path.is_file() and path.suffix.lower() == ".json":
        if structures_dir is None:
            guesses = [path.parent / "structures" / "bete-net",
                       path.parent.parent / "structures" / "bete-net"]
            found = [g for g in guesses if g.is_dir()]
            if not found:
                raise ValueError(f"{path} needs its CIF folder: give structures_dir "
                                 "(the structures/bete-net folder)")
            structures_dir = found[0]
        return load_betenet_database(path, structures_dir, site_dos=site_dos)
    from stores.config import is_embedded_store_dir, load_job_store

    if path.is_dir() and not is_embedded_store_dir(path):
        raise ValueError(f"{path} holds no fast-v1 JSON records (*.json with "
                         "a2F_frequency_meV) and is not a bete store")
    records = load_store_records(load_job_store(path, read_only=True), preset=preset,
                                 protocol_fingerprint=protocol_fingerprint)
    if not records:
        raise ValueError(f"store {path} holds no completed, dynamically stable "
                         f"electron-phonon task of preset {preset!r}")
    return records


# --------------------------------------------------------------------------- splits
def _id_key(rec: TrainingRecord) -> tuple[int, int | str]:
    return (0, int(rec.id)) if rec.id.lstrip("-").isdigit() else (1, rec.id)


def split_records(records: Sequence[TrainingRecord], test_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[TrainingRecord], list[TrainingRecord]]:
    """Seeded train/test split, independent of the order of ``records``.

    Parameters
    ----------
    records : sequence of TrainingRecord
    test_fraction : float
        Fraction held out (rounded, at least one row when 0 < fraction and
        there are two rows or more).
    seed : int
        Seed of the permutation.

    Returns
    -------
    train, test : list of TrainingRecord
        Both sorted by id.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test fraction must be in [0, 1), got {test_fraction}")
    ordered = sorted(records, key=_id_key)
    ids = [r.id for r in ordered]
    if len(set(ids)) != len(ids):
        raise ValueError("record ids are not unique; a split by id is impossible")
    n_test = int(round(test_fraction * len(ordered)))
    if test_fraction > 0 and len(ordered) >= 2:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    test_idx = set(perm[:n_test].tolist())
    train = [r for i, r in enumerate(ordered) if i not in test_idx]
    test = [r for i, r in enumerate(ordered) if i in test_idx]
    return train, test


SPLIT_GROUPS = ("random", "chemsys", "element")
"""How a held-out set is drawn: single rows, whole chemical systems, or one element's rows."""


def chemical_system(record: TrainingRecord) -> str:
    """The record's chemical system, elements sorted and joined by '-' (``Al-Ni-V``)."""
    return "-".join(sorted(record.elements))


def grouped_split(records: Sequence[TrainingRecord], by: str = "chemsys",
                  test_fraction: float = 0.2, seed: int = 0, element: str | None = None,
                  ) -> tuple[list[TrainingRecord], list[TrainingRecord]]:
    """Train/test split that keeps related rows on one side.

    Parameters
    ----------
    records : sequence of TrainingRecord
    by : {"random", "chemsys", "element"}
        ``random``: :func:`split_records`. ``chemsys``: whole chemical systems go to the test
        side (seeded order of the systems) until it holds at least ``test_fraction`` of the
        rows, so no test structure shares its element set with a training structure.
        ``element``: leave one element out: every row containing ``element`` is held out.
    test_fraction, seed
        As in :func:`split_records` (not used by ``element``).
    element : str, optional
        The held-out element symbol (``by="element"``).

    Returns
    -------
    train, test : list of TrainingRecord
        Both sorted by id.
    """
    if by == "random":
        return split_records(records, test_fraction, seed)
    ordered = sorted(records, key=_id_key)
    if by == "element":
        if not element:
            raise ValueError("a leave-one-element-out split needs the element to hold out")
        test = [r for r in ordered if element in r.elements]
        if not test or len(test) == len(ordered):
            raise ValueError(f"holding out {element} leaves an empty side ({len(test)} of "
                             f"{len(ordered)} rows contain it); choose another element")
        return [r for r in ordered if element not in r.elements], test
    if by != "chemsys":
        raise ValueError(f"unknown split grouping {by!r}; choose one of {', '.join(SPLIT_GROUPS)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be in (0, 1), got {test_fraction}")
    systems = sorted({chemical_system(r) for r in ordered})
    if len(systems) < 2:
        raise ValueError("all rows share one chemical system; a grouped split is impossible")
    order = np.random.default_rng(seed).permutation(len(systems))
    target = test_fraction * len(ordered)
    held: set[str] = set()
    count = 0
    sizes = {c: 0 for c in systems}
    for r in ordered:
        sizes[chemical_system(r)] += 1
    for i in order:
        if count >= target or len(held) == len(systems) - 1:
            break
        held.add(systems[i])
        count += sizes[systems[i]]
    test = [r for r in ordered if chemical_system(r) in held]
    return [r for r in ordered if chemical_system(r) not in held], test


def read_index_file(path: str | os.PathLike[str]) -> list[int]:
    """Integer indices of a BETE-NET split file (floats written as ``%e``)."""
    out = []
    for line in Path(path).read_text().split():
        value = float(line)
        if value != int(value):
            raise ValueError(f"{path}: {line} is not an integer index")
        out.append(int(value))
    return out


def split_by_index_files(records: Iterable[TrainingRecord], train_file: str | os.PathLike[str],
                         test_file: str | os.PathLike[str],
                         ) -> tuple[list[TrainingRecord], list[TrainingRecord]]:
    """The paper's split: rows whose id is in ``idx_train_full.txt`` / ``idx_test_full.txt``.

    Rows in neither list are left out (logged).
    """
    train_ids = {str(i) for i in read_index_file(train_file)}
    test_ids = {str(i) for i in read_index_file(test_file)}
    train: list[TrainingRecord] = []
    test: list[TrainingRecord] = []
    other: list[TrainingRecord] = []
    for rec in records:
        (train if rec.id in train_ids else test if rec.id in test_ids else other).append(rec)
    if other:
        logger.info("%d records are in neither index list and are left out", len(other))
    return sorted(train, key=_id_key), sorted(test, key=_id_key)

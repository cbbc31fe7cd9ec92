"""The site-DOS input of the ``mpd`` variant: MLIP phonon documents, reused or computed.

A variant whose ``site_dos`` source is ``SITE_DOS_MLIP`` (:mod:`betenet_model.variants`)
takes the site-projected phonon DOS of SevenNet-0 harmonic phonons of the cell as given
(:func:`workflows.mlip.phonons.mlip_phonon_document`). Train, evaluate, predict, screen and
``al run`` call this module; a document already in the store is reused, a missing one is
computed (seconds to minutes per cell on one core) and stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from betenet_model.variants import SITE_DOS_MLIP, get_variant
from stores.mlip_phonons import find_mlip_phonon, find_mlip_phonons
from stores.training_record import TrainingRecord
from workflows.mlip.flows import MLIPPhononMaker
from workflows.mlip.phonons import (
    MLIPPhononError,
    mlip_phonon_document,
    run_mlip_phonons,
)
from workflows.mlip.potentials import DEFAULT_POTENTIAL


def uses_mlip_dos(variant: str | None) -> bool:
    """Whether ``variant`` takes its site DOS from MLIP phonons."""
    return get_variant(variant).site_dos == SITE_DOS_MLIP


def stored_document(structure: Structure, store: Any,
                    potential: str = DEFAULT_POTENTIAL) -> dict[str, Any] | None:
    """The stored MLIP phonon document of ``structure`` (default settings), or None."""
    return find_mlip_phonon(store, MLIPPhononMaker(potential=potential).key(structure))


def mlip_site_dos(structure: Structure, store: Any = None, source_id: str | None = None,
                  potential: str = DEFAULT_POTENTIAL, stored_only: bool = False,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies_meV (k,), site DOS (n_sites, k))`` of ``structure``'s MLIP phonons.

    ``stored_only``: never compute (a missing document raises :class:`MLIPPhononError`).

    Raises
    ------
    PotentialError, MLIPPhononError
        The potential cannot take the cell, or its phonons are not finite.
    """
    if stored_only:
        doc = stored_document(structure, store, potential)
        if doc is None:
            raise MLIPPhononError("no stored MLIP phonon document")
    else:
        doc = mlip_phonon_document(structure, potential, store, source_id)
    return site_dos_arrays(doc)


def mlip_documents(items: Sequence[tuple[str | None, Structure]], store: Any = None,
                   potential: str = DEFAULT_POTENTIAL, stored_only: bool = False,
                   say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per ``(id, structure)``: its MLIP phonon document, or ``{"error": reason}``.

    The store is searched once for all of them; missing documents are computed and stored
    (:func:`~workflows.mlip.phonons.run_mlip_phonons`), or with ``stored_only`` reported.
    ``say`` hears every 50th structure.
    """
    if stored_only:
        maker = MLIPPhononMaker(potential=potential)
        keys = [maker.key(structure) for _id, structure in items]
        found = find_mlip_phonons(store, set(keys)) if store is not None else {}
        return [found.get(k) or {"error": "no stored MLIP phonon document"} for k in keys]
    done = [0]

    def every_50(line: str) -> None:
        done[0] += 1
        if say is not None and done[0] % 50 == 0:
            say(f"mpd: MLIP phonon DOS of {done[0]}/{len(items)} structures")

    return run_mlip_phonons(items, potential, store, progress=every_50)


def site_dos_arrays(doc: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies_meV (k,), site DOS (n_sites, k))`` of an MLIP phonon document."""
    return (np.asarray(doc["frequencies_meV"], dtype=float),
            np.asarray(doc["site_dos"], dtype=float))


def with_mlip_site_dos(records: Sequence[TrainingRecord], store: Any = None,
                       say: Callable[[str], None] | None = None,
                       potential: str = DEFAULT_POTENTIAL, stored_only: bool = False,
                       ) -> list[TrainingRecord]:
    """Copies of ``records`` carrying their MLIP site DOS; rows without one are left out.

    ``stored_only``: take only documents already in ``store`` (benchmarks on a subset).

    How many rows were left out, and why, goes to ``say`` (never silently).
    """
    say = say or (lambda _m: None)
    docs = mlip_documents([(rec.id, rec.structure) for rec in records], store, potential,
                          stored_only, say)
    kept, dropped = [], []
    for rec, doc in zip(records, docs, strict=True):
        if "error" in doc:
            dropped.append(f"{rec.id}: {doc['error']}")
            continue
        freq, dos = site_dos_arrays(doc)
        kept.append(dataclasses.replace(rec, phdos_frequencies_meV=freq, site_dos=dos))
    if dropped:
        say(f"mpd: {len(dropped)} of {len(records)} rows left out (no MLIP phonon DOS): "
            + "; ".join(dropped[:5]) + (f"; ... ({len(dropped) - 5} more)"
                                        if len(dropped) > 5 else ""))
    return kept


def candidate_site_dos(candidates: Sequence[Any], store: Any, potential: str = DEFAULT_POTENTIAL,
                       ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Screening input: candidate id → ``{"frequencies_meV", "site_dos", "structure"}``.

    Returns the found entries and, for the others, id → the reason (one line).
    """
    found: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    docs = mlip_documents([(c.id, c.structure) for c in candidates], store, potential)
    for c, doc in zip(candidates, docs, strict=True):
        if "error" in doc:
            failed[c.id] = doc["error"]
            continue
        freq, dos = site_dos_arrays(doc)
        found[c.id] = {"frequencies_meV": freq.tolist(), "site_dos": dos.tolist(),
                       "structure": c.structure.as_dict()}
    return found, failed

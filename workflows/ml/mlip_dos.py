"""The site-DOS input of the ``mpd`` variant: MLIP phonon documents, reused or computed.

A variant whose ``site_dos`` source is ``"mlip"`` (:mod:`betenet_model.variants`) takes the
site-projected phonon DOS of SevenNet-0 harmonic phonons of the cell as given
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

from betenet_model.variants import get_variant
from stores.mlip_phonons import find_mlip_phonon
from stores.training_record import TrainingRecord
from workflows.mlip.flows import MLIPPhononMaker
from workflows.mlip.phonons import MLIPPhononError, PotentialError, mlip_phonon_document
from workflows.mlip.potentials import DEFAULT_POTENTIAL

MLIP_SOURCE = "mlip"
"""The ``Variant.site_dos`` value served here."""


def uses_mlip_dos(variant: str | None) -> bool:
    """Whether ``variant`` takes its site DOS from MLIP phonons."""
    return get_variant(variant).site_dos == MLIP_SOURCE


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
    kept, dropped = [], []
    for i, rec in enumerate(records, 1):
        try:
            freq, dos = mlip_site_dos(rec.structure, store, rec.id, potential, stored_only)
        except (PotentialError, MLIPPhononError) as exc:
            dropped.append(f"{rec.id}: {exc}")
            continue
        kept.append(dataclasses.replace(rec, phdos_frequencies_meV=freq, site_dos=dos))
        if i % 50 == 0:
            say(f"mpd: MLIP phonon DOS of {i}/{len(records)} rows")
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
    for c in candidates:
        try:
            freq, dos = mlip_site_dos(c.structure, store, c.id, potential)
        except (PotentialError, MLIPPhononError) as exc:
            failed[c.id] = str(exc)
            continue
        found[c.id] = {"frequencies_meV": freq.tolist(), "site_dos": dos.tolist(),
                       "structure": c.structure.as_dict()}
    return found, failed

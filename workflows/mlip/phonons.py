"""Public API: the MLIP phonon document of a structure, computed once and reused from the store.

>>> doc = mlip_phonon_document(structure, "sevennet-0", store)   # doctest: +SKIP
>>> np.asarray(doc["site_dos_grid"]).shape                        # doctest: +SKIP
(n_sites, 51)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from pymatgen.core import Structure

from stores.mlip_phonons import find_mlip_phonon, write_mlip_phonon
from stores.schemas import MLIPPhononDocument
from workflows.mlip.flows import MLIPPhononError, MLIPPhononMaker
from workflows.mlip.potentials import DEFAULT_POTENTIAL, PotentialError, get_potential

logger = logging.getLogger(__name__)

__all__ = ["MLIPPhononError", "PotentialError", "check_structure", "compute_mlip_phonons",
           "mlip_phonon_document", "run_mlip_phonons"]


def check_ordered(structure: Structure) -> None:
    """Raise a one-line :class:`PotentialError` for a disordered cell."""
    if not structure.is_ordered:
        raise PotentialError(f"{structure.composition.reduced_formula}: the structure has "
                             "partial occupancies; an interatomic potential needs an ordered "
                             "cell (order it first, e.g. pymatgen "
                             "OrderDisorderedStructureTransformation)")


def check_structure(structure: Structure, potential: str = DEFAULT_POTENTIAL) -> None:
    """Raise a one-line :class:`PotentialError` for a cell the potential cannot take."""
    formula = structure.composition.reduced_formula
    check_ordered(structure)
    pot = get_potential(potential)
    missing = sorted({el.symbol for el in structure.composition.elements}
                     - pot.covered_elements())
    if missing:
        raise PotentialError(f"{formula}: {pot.name} does not cover {', '.join(missing)}; "
                             f"choose another potential (--potential)")


def compute_mlip_phonons(structure: Structure, maker: MLIPPhononMaker | None = None,
                         source_id: str | None = None) -> MLIPPhononDocument:
    """Run the flow here (in-memory JobStore) and return its document; stores nothing.

    Raises
    ------
    PotentialError, MLIPPhononError
        Uncovered elements, disorder, too large a supercell, non-finite forces or frequencies.
    """
    from jobflow import JobStore, run_locally
    from maggma.stores import MemoryStore

    from workflows.local import quiet_jobflow

    maker = maker or MLIPPhononMaker()
    check_structure(structure, maker.potential)
    get_potential(maker.potential).calculator()  # load outside the timing (once per process)
    start = time.perf_counter()
    flow = maker.make(structure, source_id)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with quiet_jobflow(False):
        responses = run_locally(flow, store=store, log=False, raise_immediately=True,
                                ensure_success=True)
    doc = responses[flow.output.uuid][1].output
    return doc.model_copy(update={"wall_s": time.perf_counter() - start})


def mlip_phonon_document(structure: Structure, potential: str = DEFAULT_POTENTIAL,
                         store: Any = None, source_id: str | None = None,
                         maker: MLIPPhononMaker | None = None) -> dict[str, Any]:
    """The MLIP phonon document of ``structure`` (a dict), from ``store`` when it is there.

    Parameters
    ----------
    structure
        The cell, used as given (not relaxed).
    potential
        Registry name (``sevennet-0``, ``chgnet``).
    store
        Connected JobStore; None computes without storing.
    source_id
        Recorded with a new document.
    maker
        Non-default settings (its ``potential`` wins over ``potential``).

    Returns
    -------
    dict
        :class:`~stores.schemas.MLIPPhononDocument` fields; ``site_dos_grid`` has shape
        (n_sites, 51) on the model grid, ``reused`` says whether it came from the store.
    """
    maker = maker or MLIPPhononMaker(potential=potential)
    check_ordered(structure)
    key = maker.key(structure)
    if store is not None:
        stored = find_mlip_phonon(store, key)
        if stored is not None:
            return {**stored, "reused": True}
    doc = compute_mlip_phonons(structure, maker, source_id)
    if store is not None:
        write_mlip_phonon(store, doc)
    return {**doc.model_dump(mode="json"), "reused": False}


def run_mlip_phonons(items: Iterable[tuple[str | None, Structure]],
                     potential: str = DEFAULT_POTENTIAL, store: Any = None,
                     maker: MLIPPhononMaker | None = None,
                     progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Documents (or ``{"error": ...}`` rows) for many structures; failures are not stored."""
    say = progress or (lambda _m: None)
    maker = maker or MLIPPhononMaker(potential=potential)
    out: list[dict[str, Any]] = []
    for source_id, structure in items:
        formula = structure.composition.reduced_formula
        try:
            doc = mlip_phonon_document(structure, maker.potential, store, source_id, maker)
        except (PotentialError, MLIPPhononError) as exc:
            say(f"{formula} ({source_id}): {exc}")
            out.append({"formula": formula, "source_id": source_id,
                        "potential": maker.potential, "error": str(exc)})
            continue
        say(f"{formula} ({source_id}): min {doc['min_frequency_meV']:.2f} meV, ω_log-like "
            f"{doc['mean_log_frequency_meV']:.2f} meV"
            + (" (stored)" if doc["reused"] else f" in {doc['wall_s']:.1f} s"))
        out.append(doc)
    return out

"""Public API: the MLIP phonon document of a structure, computed once and reused from the store.

>>> doc = mlip_phonon_document(structure, "sevennet-0", store)   # doctest: +SKIP
>>> np.asarray(doc["site_dos_grid"]).shape                        # doctest: +SKIP
(n_sites, 51)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from pymatgen.core import Structure

from stores.mlip_phonons import find_mlip_phonon, find_mlip_phonons, write_mlip_phonon
from stores.schemas import MLIPPhononDocument
from workflows.mlip.flows import MLIPPhononError, MLIPPhononMaker
from workflows.mlip.potentials import DEFAULT_POTENTIAL, PotentialError, get_potential

logger = logging.getLogger(__name__)

__all__ = ["MLIPPhononError", "PotentialError", "check_potential_covers", "compute_mlip_phonons",
           "mlip_phonon_document", "run_mlip_phonons"]


def check_ordered(structure: Structure) -> None:
    """Raise a one-line :class:`PotentialError` for a disordered cell."""
    if not structure.is_ordered:
        raise PotentialError(f"{structure.composition.reduced_formula}: the structure has "
                             "partial occupancies; an interatomic potential needs an ordered "
                             "cell (order it first, e.g. pymatgen "
                             "OrderDisorderedStructureTransformation)")


def check_potential_covers(structure: Structure, potential: str = DEFAULT_POTENTIAL) -> None:
    """Raise a one-line :class:`PotentialError` for a cell the potential cannot take."""
    formula = structure.composition.reduced_formula
    check_ordered(structure)
    pot = get_potential(potential)
    missing = sorted({el.symbol for el in structure.composition.elements}
                     - pot.covered_elements())
    if missing:
        raise PotentialError(f"{formula}: {pot.name} does not cover {', '.join(missing)}; "
                             "choose another potential (`bete phonons --potential`, "
                             "`bete screen --prescreen-potential`)")


def compute_mlip_phonons(structure: Structure, maker: MLIPPhononMaker | None = None,
                         source_id: str | None = None) -> MLIPPhononDocument:
    """Run the flow here (in-memory JobStore) and return its document; stores nothing.

    Raises
    ------
    PotentialError, MLIPPhononError
        Uncovered elements, disorder, too large a supercell, non-finite forces or frequencies.
    """
    from jobflow import run_locally

    from stores.scratch import scratch_job_store
    from workflows.qe.local import quiet_jobflow

    maker = maker or MLIPPhononMaker()
    check_potential_covers(structure, maker.potential)
    get_potential(maker.potential).calculator()  # load outside the timing (once per process)
    start = time.perf_counter()
    flow = maker.make(structure, source_id)
    store = scratch_job_store()
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


def _compute_row(args: tuple[Structure, MLIPPhononMaker, str | None]) -> dict[str, Any]:
    """One calculation as a row: the document, or ``{"error": ...}`` (run in a worker).

    Any exception becomes an error row, so that one cell cannot stop a batch; those that are
    not one-line input errors say their type.
    """
    structure, maker, source_id = args
    try:
        return compute_mlip_phonons(structure, maker, source_id).model_dump(mode="json")
    except (PotentialError, MLIPPhononError) as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported per structure, the batch goes on
        return {"error": f"unexpected {type(exc).__name__}: {exc}"}


def _rows(todo: dict[int, tuple[Structure, MLIPPhononMaker, str | None]],
          workers: int, started: Callable[[int], None] = lambda _k: None,
          ) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, row)`` of each of ``todo`` as it finishes.

    Computed here, or in ``workers`` processes (one model load each); ``started(index)`` is
    called when a calculation starts here, or is handed to a worker.
    """
    if workers <= 1 or len(todo) <= 1:
        for k, args in todo.items():
            started(k)
            yield k, _compute_row(args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(min(workers, len(todo)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for k, args in todo.items():
            started(k)
            futures[pool.submit(_compute_row, args)] = k
        for future in as_completed(futures):
            yield futures[future], future.result()


def run_mlip_phonons(items: Iterable[tuple[str | None, Structure]],
                     potential: str = DEFAULT_POTENTIAL, store: Any = None,
                     maker: MLIPPhononMaker | None = None,
                     progress: Callable[[str], None] | None = None,
                     workers: int = 1) -> list[dict[str, Any]]:
    """Documents (or ``{"error": ...}`` rows) for many structures; failures are not stored.

    Stored documents are reused; the others are computed in ``workers`` processes (each loads
    the potential once) and written here, one by one, as they finish.  Every row has
    ``run_s``: the seconds this call spent computing it (0 when reused).  The store is
    searched once for all keys.
    """
    say = progress or (lambda _m: None)
    maker = maker or MLIPPhononMaker(potential=potential)
    items = list(items)
    out: list[dict[str, Any]] = [{} for _ in items]
    keys: dict[int, str] = {}
    for k, (_source_id, structure) in enumerate(items):
        try:
            check_ordered(structure)
            keys[k] = maker.key(structure)
        except PotentialError as exc:
            out[k] = {"error": str(exc)}
    stored = find_mlip_phonons(store, set(keys.values())) if store is not None else {}
    todo = [k for k in keys if keys[k] not in stored]
    for k in range(len(items)):
        if k in keys and keys[k] in stored:
            out[k] = {**stored[keys[k]], "reused": True, "run_s": 0.0}
        if out[k]:
            _report(say, items[k], out[k], f"[{k + 1}/{len(items)}] ")
    def started(k: int) -> None:
        source_id, structure = items[k]
        say(f"[{k + 1}/{len(items)}] {structure.composition.reduced_formula} ({source_id}): "
            f"computing {maker.potential} phonons, {_supercell_size(maker, structure)}")

    for k, row in _rows({k: (items[k][1], maker, items[k][0]) for k in todo}, workers,
                        started):
        if "error" not in row:
            if store is not None:
                write_mlip_phonon(store, MLIPPhononDocument.model_validate(row))
            row = {**row, "reused": False, "run_s": row["wall_s"]}
        out[k] = row
        _report(say, items[k], row, f"[{k + 1}/{len(items)}] ")
    return [{"formula": items[k][1].composition.reduced_formula, "source_id": items[k][0],
             "potential": maker.potential, **row} if "error" in row else row
            for k, row in enumerate(out)]


def _supercell_size(maker: MLIPPhononMaker, structure: Structure) -> str:
    """``supercell of 64 atoms`` (what the time grows with), or why there is none."""
    try:
        matrix = maker.supercell_matrix(structure)
    except (MLIPPhononError, ValueError) as exc:
        return f"no supercell ({exc})"
    n = round(abs(np.linalg.det(np.asarray(matrix)))) * len(structure)
    return f"supercell of {n} atoms"


def _report(say: Callable[[str], None], item: tuple[str | None, Structure],
            row: dict[str, Any], prefix: str) -> None:
    source_id, structure = item
    formula = structure.composition.reduced_formula
    if "error" in row:
        say(f"{prefix}{formula} ({source_id}): {row['error']}")
        return
    say(f"{prefix}{formula} ({source_id}): min {row['min_frequency_meV']:.2f} meV, ω_log-like "
        f"{row['mean_log_frequency_meV']:.2f} meV"
        + (" (stored)" if row["reused"] else f" in {row['wall_s']:.1f} s"))

"""What a model takes from a universal potential besides the structure: atom features, phonon DOS.

An ensemble whose node features are a foundation mode (``sevennet_l3i5`` ...) needs the per-atom
features of that potential (:mod:`workflows.mlip.features`, one forward pass per structure); one
with the ``dos`` head needs the phonon DOS of the structure on its grid (the total DOS of the
SevenNet-0 phonon document, :mod:`workflows.mlip.phonons`, normalised per atom). Train, evaluate,
predict and screen call :func:`mlip_inputs`; documents already in the store are reused, missing
ones are computed and stored (``stored_only``: reported missing instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from betenet_model.features import foundation_potential
from betenet_model.targets import GRID_STEP_MEV, ModelGrid

DOS_PER_ATOM = 3.0
"""∫ F(ω) dω of the per-atom phonon DOS the ``dos`` head multiplies (3 modes per atom)."""


@dataclass(frozen=True)
class MLIPNeeds:
    """Inputs from a universal potential a model needs.

    Attributes
    ----------
    features : str or None
        Registry name of the potential whose atom features the node inputs take.
    dos_grid : ModelGrid or None
        The grid the phonon DOS is put on (the ``dos`` head), or None.
    """

    features: str | None = None
    dos_grid: ModelGrid | None = None

    @classmethod
    def of_config(cls, config: Any) -> MLIPNeeds:
        """The needs of an :class:`~betenet_model.ensemble.EnsembleConfig`."""
        return cls(foundation_potential(config.node_features),
                   config.grid if config.network.head == "dos" else None)

    @classmethod
    def of_ensemble(cls, ensemble: Any) -> MLIPNeeds:
        """The needs of a loaded :class:`~betenet_model.ensemble.Ensemble`."""
        return cls.of_config(ensemble.config)

    @classmethod
    def of_manifest(cls, manifest: dict[str, Any]) -> MLIPNeeds:
        """The needs of an ``ensemble.json`` (without loading the members)."""
        from betenet_model.ensemble import EnsembleConfig

        return cls.of_config(EnsembleConfig.from_dict(manifest["config"]))

    def __bool__(self) -> bool:
        return bool(self.features or self.dos_grid)

    def describe(self) -> str:
        """``sevennet-l3i5 atom features and the SevenNet-0 phonon DOS`` (for progress lines)."""
        parts = ([f"{self.features} atom features"] if self.features else []) + (
            ["the SevenNet-0 phonon DOS"] if self.dos_grid else [])
        return " and ".join(parts)


def phonon_dos_on_grid(doc: dict[str, Any], grid: ModelGrid) -> np.ndarray:
    """Total phonon DOS of an MLIP phonon document on a model grid, per atom (∫ dω = 3).

    Resampled like every spectrum (:func:`betenet_model.resample_to_grid`); weight below the
    first bin (imaginary modes) or above the grid is not represented.

    Raises
    ------
    ValueError
        The DOS has no weight on the grid.
    """
    res = grid.resample(np.asarray(doc["frequencies_meV"], dtype=float),
                        np.clip(np.asarray(doc["total_dos"], dtype=float), 0, None))
    total = float(res.values.sum()) * GRID_STEP_MEV
    if total <= 0:
        raise ValueError(f"{doc.get('formula')}: the phonon DOS has no weight on the model grid")
    return res.values * (DOS_PER_ATOM / total)


def mlip_inputs(items: Sequence[tuple[str | None, Structure]], needs: MLIPNeeds,
                store: Any = None, stored_only: bool = False,
                say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per ``(id, structure)``: its ``atom_features``/``phonon_dos``, or ``error``.

    A row holds the inputs ``needs`` asks for, or ``{"error": reason}``.

    Parameters
    ----------
    items
        Identifiers and cells.
    needs
        What to provide (:class:`MLIPNeeds`); nothing needed gives empty rows.
    store
        Connected JobStore whose documents are reused and which receives new ones (None:
        computed, not stored).
    stored_only
        Never compute; a missing document is an error row (benchmarks on a cached subset).
    say
        Progress lines.
    """
    rows: list[dict[str, Any]] = [{} for _ in items]
    if not needs:
        return rows
    if needs.features:
        from workflows.mlip.features import feature_documents

        for row, doc in zip(rows, feature_documents(items, needs.features, store, stored_only,
                                                    say), strict=True):
            if "error" in doc:
                row["error"] = doc["error"]
            else:
                row["atom_features"] = np.asarray(doc["atom_features"], dtype=float)
    if needs.dos_grid:
        from workflows.ml.mlip_dos import mlip_documents

        todo = [k for k, row in enumerate(rows) if "error" not in row]
        docs = mlip_documents([items[k] for k in todo], store, stored_only=stored_only, say=say)
        for k, doc in zip(todo, docs, strict=True):
            if "error" in doc:
                rows[k] = {"error": f"no MLIP phonon DOS: {doc['error']}"}
                continue
            try:
                rows[k]["phonon_dos"] = phonon_dos_on_grid(doc, needs.dos_grid)
            except ValueError as exc:
                rows[k] = {"error": str(exc)}
    return rows


def report_dropped(ids: Sequence[str], rows: Sequence[dict[str, Any]], what: str,
                   say: Callable[[str], None]) -> None:
    """One line naming the rows without their MLIP inputs (never dropped silently)."""
    dropped = [f"{i}: {r['error']}" for i, r in zip(ids, rows, strict=True) if "error" in r]
    if dropped:
        say(f"{what}: {len(dropped)} of {len(ids)} rows left out (no MLIP input): "
            + "; ".join(dropped[:5]) + (f"; ... ({len(dropped) - 5} more)"
                                        if len(dropped) > 5 else ""))


def open_mlip_store(store_spec: str | None) -> Any:
    """The connected store of MLIP documents ``store_spec`` names (None = the settings' store).

    A missing embedded store is created; the caller closes it.
    """
    from stores.config import load_job_store

    store = load_job_store(store_spec, create=True, read_only=False)
    store.connect()
    return store

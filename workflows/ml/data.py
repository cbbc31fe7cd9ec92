"""From pymatgen structures and training records to the model's arrays.

The one place where a :class:`pymatgen.core.Structure` becomes
``(lattice, cartesian positions, atomic numbers)`` and where spectra and site
DOS are put on the model grid (:func:`workflows.common.grid.grid_values`, through
:func:`betenet_model.targets.resample_to_grid`, the only resampling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from pymatgen.core import Structure

from betenet_model.dataset import CrystalSample
from betenet_model.targets import PAPER_GRID, ModelGrid
from betenet_model.variants import DEFAULT_VARIANT, get_variant
from stores.datasets import TrainingRecord
from workflows.common.grid import grid_values
from workflows.common.physics import DEFAULT_MU_STAR, Superconductivity, superconductivity


def check_variant(variant: str) -> str:
    """Lower-case variant name (:data:`betenet_model.variants.VARIANTS`), or ValueError."""
    return get_variant(variant).name


def structure_arrays(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lattice rows (Å), cartesian positions (Å) and atomic numbers of an ordered structure.

    Raises
    ------
    ValueError
        The structure is disordered (partial occupancies) or empty.
    """
    if len(structure) == 0:
        raise ValueError("the structure has no sites")
    if not structure.is_ordered:
        raise ValueError(f"{structure.composition.reduced_formula} is disordered (partial "
                         "occupancies); BETE-NET needs an ordered cell")
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    return (np.array(structure.lattice.matrix, dtype=float),
            np.array(structure.cart_coords, dtype=float), numbers)


def structure_sample(structure: Structure, ident: str = "",
                     site_dos_frequencies_meV: ArrayLike | None = None,
                     site_dos: ArrayLike | None = None, variant: str = DEFAULT_VARIANT,
                     target: np.ndarray | None = None,
                     inputs: dict[str, Any] | None = None) -> CrystalSample:
    """A :class:`CrystalSample` for a structure (and its site DOS for cpd/fpd).

    Parameters
    ----------
    structure : Structure
    ident : str
        Identifier (default: the reduced formula).
    site_dos_frequencies_meV, site_dos : array, optional
        Site-projected phonon DOS, shape (n_sites, k), on its grid (meV); needed for cpd/fpd.
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS`.
    target : ndarray, optional
        α²F already on the model grid.
    inputs : dict, optional
        ``atom_features`` and/or ``phonon_dos`` of the structure
        (:func:`workflows.ml.mlip_inputs.mlip_inputs`).
    """
    v = get_variant(variant)
    lattice, positions, numbers = structure_arrays(structure)
    ident = ident or structure.composition.reduced_formula
    dos = None
    if v.takes_site_dos:
        if site_dos is None or site_dos_frequencies_meV is None:
            raise ValueError(f"{ident}: the {v.name} variant needs the site-projected phonon DOS")
        dos = grid_values(site_dos_frequencies_meV, np.atleast_2d(np.asarray(site_dos, float)),
                          "site DOS", ident)
    inputs = inputs or {}
    return CrystalSample(ident, lattice, positions, numbers, target=target, site_dos=dos,
                         atom_features=inputs.get("atom_features"),
                         phonon_dos=inputs.get("phonon_dos"))


def record_sample(record: TrainingRecord, variant: str = DEFAULT_VARIANT,
                  grid: ModelGrid = PAPER_GRID, inputs: dict[str, Any] | None = None,
                  ) -> CrystalSample:
    """A training :class:`CrystalSample` from a record: α²F on the model grid, or its Tc.

    ``inputs`` as for :func:`structure_sample`.
    """
    target = None
    if record.frequencies_meV is not None and record.a2f is not None:
        target = grid_values(record.frequencies_meV, record.a2f, "α²F", record.id, grid)
    sample = structure_sample(record.structure, record.id, record.phdos_frequencies_meV,
                              record.site_dos, variant, target=target, inputs=inputs)
    sample.tc_K = record.tc_K
    return sample


def records_to_samples(records: Sequence[TrainingRecord], variant: str = DEFAULT_VARIANT,
                       grid: ModelGrid = PAPER_GRID,
                       inputs: Sequence[dict[str, Any]] | None = None) -> list[CrystalSample]:
    """:func:`record_sample` for every record (``inputs``: one dict per record, or None)."""
    rows = list(inputs) if inputs is not None else [None] * len(records)
    return [record_sample(r, variant, grid, x) for r, x in zip(records, rows, strict=True)]


def record_truth(record: TrainingRecord, mu_star: float = DEFAULT_MU_STAR) -> Superconductivity:
    """λ, ω_log, ω₂ and Tc of a record's own (un-resampled) spectrum.

    Raises
    ------
    ValueError
        The record has only a Tc label (no spectrum).
    """
    if record.frequencies_meV is None or record.a2f is None:
        raise ValueError(f"record {record.id} has only a Tc label, no α²F spectrum")
    return superconductivity(record.frequencies_meV, record.a2f, mu_star=mu_star)

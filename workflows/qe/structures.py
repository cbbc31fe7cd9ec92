"""Read and prepare crystal structures for QE, refusing what the protocol cannot compute.

:func:`read_structure` reads CIF, POSCAR/CONTCAR and pymatgen JSON files;
:func:`prepare_structure` checks a structure and reduces it to the primitive standard
cell (``SpacegroupAnalyzer(symprec=1e-3).get_primitive_standard_structure()``, as
``PROTOCOL-fast-v1.md`` prescribes).  Every refusal is a
:class:`~workflows.qe.errors.BeteInputError` whose message names the cause and the fix.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import DummySpecies, Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from workflows.qe.errors import BeteInputError

__all__ = ["read_structure", "validate_structure", "prepare_structure", "MIN_DISTANCE_A"]

MIN_DISTANCE_A = 0.5
"""Two atoms closer than this (Å) are taken as a broken structure."""


def read_structure(path: str | Path) -> Structure:
    """Read a structure from a CIF, POSCAR/CONTCAR/``*.vasp`` or pymatgen JSON file.

    Parameters
    ----------
    path
        File to read; the format follows pymatgen's file-name rules.

    Returns
    -------
    Structure
        The first structure in the file, as written (not yet prepared).

    Raises
    ------
    BeteInputError
        When the file is missing or pymatgen cannot read a structure from it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise BeteInputError(f"structure file {path} does not exist; check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(str(path))
    except Exception as exc:  # pymatgen raises many types for unreadable files
        raise BeteInputError(
            f"cannot read a structure from {path} ({type(exc).__name__}: {exc}); give a CIF, "
            "a POSCAR/CONTCAR (or *.vasp) or a pymatgen Structure JSON file"
        ) from exc
    if not isinstance(structure, Structure):
        raise BeteInputError(f"{path} does not hold a periodic crystal structure; give a "
                             "CIF, POSCAR or pymatgen Structure JSON")
    return structure


def validate_structure(structure: Structure, max_atoms: int | None = None) -> None:
    """Refuse structures the non-spin-polarised el-ph protocol cannot compute.

    Parameters
    ----------
    structure
        The structure to check.
    max_atoms
        Largest number of sites allowed; None skips the check.

    Raises
    ------
    BeteInputError
        For an empty, disordered, magnetic, non-finite, overlapping or too large cell, or
        a species that is not a chemical element.
    """
    if not isinstance(structure, Structure):
        raise BeteInputError(f"expected a pymatgen Structure, got {type(structure).__name__}; "
                             "read files with read_structure(path)")
    if len(structure) == 0:
        raise BeteInputError("the structure has no sites; give a crystal with at least one atom")
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(structure.frac_coords)):
        raise BeteInputError("the structure has non-finite (NaN/inf) lattice vectors or "
                             "coordinates; fix the input file")
    if abs(np.linalg.det(matrix)) < 1e-6:
        raise BeteInputError("the lattice vectors are linearly dependent (cell volume ~0); "
                             "fix the cell")
    if not structure.is_ordered:
        bad = next(i for i, site in enumerate(structure) if not site.is_ordered)
        raise BeteInputError(
            f"site {bad} has partial occupancy ({structure[bad].species}); the structure is "
            "disordered: pick an ordered representative (e.g. pymatgen's "
            "OrderDisorderedStructureTransformation) or a supercell model first")
    for i, site in enumerate(structure):
        specie = site.specie
        if isinstance(specie, DummySpecies) or not isinstance(
            getattr(specie, "element", specie), Element
        ):
            raise BeteInputError(f"site {i} holds {specie!s}, which is not a chemical "
                                 "element; replace dummy species by real elements")
        spin = getattr(specie, "spin", None)
        if spin:
            raise BeteInputError(
                f"site {i} ({specie}) carries spin {spin}; bete runs non-spin-polarised "
                "calculations: remove the spin from the species to compute the non-magnetic "
                "state, or use a spin-polarised workflow for magnetic materials")
    magmoms = structure.site_properties.get("magmom")
    if magmoms is not None:
        for i, moment in enumerate(magmoms):
            if moment is None:
                continue
            values = np.atleast_1d(np.asarray(getattr(moment, "moment", moment), dtype=float))
            if np.any(np.abs(values) > 1e-8):
                raise BeteInputError(
                    f"site {i} ({structure[i].specie}) has magnetic moment {moment}; bete runs "
                    "non-spin-polarised calculations: remove the 'magmom' site property "
                    "(structure.remove_site_property('magmom')) to compute the non-magnetic "
                    "state, or use a spin-polarised workflow for magnetic materials")
    if max_atoms is not None and len(structure) > max_atoms:
        raise BeteInputError(
            f"the cell has {len(structure)} atoms, more than the limit of {max_atoms}; use a "
            "smaller (primitive) cell or raise the limit (setting max_atoms / BETE_MAX_ATOMS)")
    if len(structure) > 1:
        dist = structure.distance_matrix + np.eye(len(structure)) * 1e9
        if dist.min() < MIN_DISTANCE_A:
            first, second = (int(x) for x in np.unravel_index(np.argmin(dist), dist.shape))
            raise BeteInputError(
                f"sites {first} and {second} are {dist[first, second]:.3f} Å apart "
                f"(< {MIN_DISTANCE_A} Å); the structure has overlapping atoms: remove "
                "duplicates or fix the coordinates")


def prepare_structure(structure: Structure, max_atoms: int | None = None,
                      symprec: float = 1e-3, primitive: bool = True) -> Structure:
    """Check a structure and reduce it to the primitive standard cell.

    Parameters
    ----------
    structure
        Input structure (any cell).
    max_atoms
        Limit on the number of atoms of the prepared cell; None reads the ``max_atoms``
        setting now (default 16).
    symprec
        Symmetry tolerance (Å) for spglib.
    primitive
        Reduce to the primitive standard cell (True in every preset); False keeps the cell.

    Returns
    -------
    Structure
        A new structure with plain elements and no site properties.

    Raises
    ------
    BeteInputError
        See :func:`validate_structure`; also when the symmetry analysis fails.
    """
    if max_atoms is None:
        from stores.settings import get_settings

        max_atoms = get_settings().max_atoms
    validate_structure(structure, max_atoms=None)
    plain = Structure(structure.lattice, [site.specie.symbol for site in structure],
                      structure.frac_coords)
    if primitive:
        try:
            reduced = SpacegroupAnalyzer(plain, symprec=symprec).get_primitive_standard_structure()
        except Exception as exc:  # spglib failures surface as several types
            raise BeteInputError(
                f"symmetry analysis failed ({exc}); check the structure or loosen symprec "
                f"(now {symprec})") from exc
        plain = Structure(reduced.lattice, [site.specie.symbol for site in reduced],
                          reduced.frac_coords)
    validate_structure(plain, max_atoms=max_atoms)
    return plain

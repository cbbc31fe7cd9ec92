"""Read, check and prepare crystal structures: one check for every command.

``bete dfpt run``/``submit``, ``bete phonons``, ``bete predict``, ``bete screen`` and
``bete al run`` read structures through :func:`load_structure` (files) or check them
with :func:`check_structure` (candidates from JSON or the store), so the same cell
is refused everywhere with the same message:

- empty cell, non-finite or degenerate lattice;
- disorder (partial occupancies);
- a species that is not a chemical element, or an element bete cannot handle
  (beyond Pu, Z > 94: no pseudopotential family covers it and no training data);
- magnetism (spin on a species or a non-zero ``magmom``): every calculation and the
  model's training data are non-spin-polarised;
- atoms closer than :data:`MIN_DISTANCE_A` (a broken or duplicated structure);
- more atoms than a limit, where the caller gives one.

Each refusal is a :class:`StructureCheckError` (a ``BeteInputError``) whose
``reason`` groups it (``screen`` counts rejections per reason) and whose message
names the cause and the fix.  :func:`prepare_structure` checks a structure and reduces it
to the primitive standard cell the QE inputs describe
(``SpacegroupAnalyzer(symprec=1e-3).get_primitive_standard_structure()``, as
``PROTOCOL-fast-v1.md`` prescribes).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import DummySpecies, Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from workflows.qe.errors import BeteInputError

__all__ = ["MIN_DISTANCE_A", "MAX_Z", "StructureCheckError", "check_structure",
           "load_structure", "prepare_structure", "read_structure"]

MIN_DISTANCE_A = 0.5
"""Two atoms closer than this (Å) are taken as a broken structure."""

MAX_Z = 94
"""Heaviest element handled (Pu): the range of pslibrary/SSSP and of any training data."""


class StructureCheckError(BeteInputError):
    """A structure refused by :func:`check_structure`.

    Attributes
    ----------
    reason : str
        One of ``invalid``, ``disordered``, ``unsupported_element``, ``magnetic``,
        ``overlapping_atoms``, ``too_many_atoms``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def read_structure(path: str | Path) -> Structure:
    """Read a structure from a CIF, POSCAR/CONTCAR/``*.vasp`` or pymatgen JSON file.

    Parameters
    ----------
    path
        File to read; the format follows pymatgen's file-name rules.

    Returns
    -------
    Structure
        The first structure in the file, as written (not checked).

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


def load_structure(path: str | Path) -> Structure:
    """:func:`read_structure` then :func:`check_structure`; messages start with the file name.

    Raises
    ------
    BeteInputError
        Unreadable file, or a :class:`StructureCheckError` prefixed with ``path``.
    """
    structure = read_structure(path)
    try:
        check_structure(structure)
    except StructureCheckError as exc:
        raise StructureCheckError(exc.reason, f"{path}: {exc}") from None
    return structure


def check_structure(structure: Structure) -> None:
    """Refuse a structure bete cannot compute or predict (see the module docstring).

    The DFPT atom limit is apart (:func:`check_atom_limit`): prediction has none.

    Parameters
    ----------
    structure
        The structure to check (any cell).

    Raises
    ------
    StructureCheckError
        With the ``reason`` of the first failed check and a message naming the fix.

    Examples
    --------
    >>> from pymatgen.core import Lattice
    >>> bad = Structure(Lattice.cubic(4.0), ["Al", "Al"], [[0, 0, 0], [0.025, 0, 0]])
    >>> check_structure(bad)
    Traceback (most recent call last):
    ...
    workflows.qe.structures.StructureCheckError: sites 0 and 1 are 0.100 Å apart (< 0.5 Å); \
the structure has overlapping atoms: remove duplicates or fix the coordinates
    """
    if not isinstance(structure, Structure):
        raise StructureCheckError("invalid", f"expected a pymatgen Structure, got "
                                  f"{type(structure).__name__}; read files with "
                                  "read_structure(path)")
    if len(structure) == 0:
        raise StructureCheckError("invalid", "the structure has no sites; give a crystal "
                                  "with at least one atom")
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(structure.frac_coords)):
        raise StructureCheckError("invalid", "the structure has non-finite (NaN/inf) lattice "
                                  "vectors or coordinates; fix the input file")
    if abs(np.linalg.det(matrix)) < 1e-6:
        raise StructureCheckError("invalid", "the lattice vectors are linearly dependent "
                                  "(cell volume ~0); fix the cell")
    if not structure.is_ordered:
        bad = next(i for i, site in enumerate(structure) if not site.is_ordered)
        raise StructureCheckError(
            "disordered",
            f"site {bad} has partial occupancy ({structure[bad].species}); the structure is "
            "disordered: pick an ordered representative (e.g. pymatgen's "
            "OrderDisorderedStructureTransformation) or a supercell model first")
    _check_species(structure)
    _check_magnetism(structure)
    if len(structure) > 1:
        dist = structure.distance_matrix + np.eye(len(structure)) * 1e9
        if dist.min() < MIN_DISTANCE_A:
            first, second = (int(x) for x in np.unravel_index(np.argmin(dist), dist.shape))
            raise StructureCheckError(
                "overlapping_atoms",
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
        A :class:`StructureCheckError` (the cell as given, then the prepared cell against
        ``max_atoms``); also when the symmetry analysis fails.
    """
    if max_atoms is None:
        from stores.settings import get_settings

        max_atoms = get_settings().max_atoms
    check_structure(structure)
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
    check_structure(plain)
    check_atom_limit(plain, max_atoms)
    return plain


def check_atom_limit(structure: Structure, max_atoms: int) -> None:
    """Refuse a cell with more sites than ``max_atoms`` (the DFPT limit; prediction has none).

    Raises
    ------
    StructureCheckError
        Reason ``too_many_atoms``, naming ``--max-atoms`` and the setting.
    """
    if len(structure) > max_atoms:
        raise StructureCheckError(
            "too_many_atoms",
            f"the cell has {len(structure)} atoms, more than the limit of {max_atoms}; use a "
            "smaller (primitive) cell or raise the limit (--max-atoms, setting max_atoms / "
            "BETE_MAX_ATOMS)")


def _check_species(structure: Structure) -> None:
    for i, site in enumerate(structure):
        specie = site.specie
        element = getattr(specie, "element", specie)
        if isinstance(specie, DummySpecies) or not isinstance(element, Element):
            raise StructureCheckError("invalid", f"site {i} holds {specie!s}, which is not a "
                                      "chemical element; replace dummy species by real "
                                      "elements")
        if element.Z > MAX_Z:
            raise StructureCheckError(
                "unsupported_element",
                f"site {i} holds {element.symbol} (Z = {element.Z}); bete handles H to Pu "
                f"(Z ≤ {MAX_Z}): no pseudopotential family covers heavier elements and no "
                "training structure contains one; leave this structure out")


def _check_magnetism(structure: Structure) -> None:
    advice = ("bete runs non-spin-polarised calculations and its model was trained on them: "
              "{fix} to treat the non-magnetic state, or use a spin-polarised workflow for "
              "magnetic materials")
    for i, site in enumerate(structure):
        spin = getattr(site.specie, "spin", None)
        if spin:
            raise StructureCheckError(
                "magnetic", f"site {i} ({site.specie}) carries spin {spin}; "
                + advice.format(fix="remove the spin from the species"))
    magmoms = structure.site_properties.get("magmom")
    for i, moment in enumerate(magmoms or []):
        if moment is None:
            continue
        values = np.atleast_1d(np.asarray(getattr(moment, "moment", moment), dtype=float))
        if np.any(np.abs(values) > 1e-8):
            raise StructureCheckError(
                "magnetic", f"site {i} ({structure[i].specie}) has magnetic moment {moment}; "
                + advice.format(fix="remove the 'magmom' site property "
                                "(structure.remove_site_property('magmom'))"))

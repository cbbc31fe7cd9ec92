"""Read and prepare crystal structures for QE, refusing what the protocol cannot compute.

:func:`read_structure` (from :mod:`workflows.structures`) reads CIF, POSCAR/CONTCAR and
pymatgen JSON files; :func:`prepare_structure` checks a structure (the shared
:func:`~workflows.structures.check_structure`) and reduces it to the primitive standard cell
(``SpacegroupAnalyzer(symprec=1e-3).get_primitive_standard_structure()``, as
``PROTOCOL-fast-v1.md`` prescribes).  Every refusal is a
:class:`~workflows.qe.errors.BeteInputError` whose message names the cause and the fix.
"""

from __future__ import annotations

from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from workflows.qe.errors import BeteInputError
from workflows.structures import MIN_DISTANCE_A, check_structure, read_structure

__all__ = ["read_structure", "validate_structure", "prepare_structure", "MIN_DISTANCE_A"]


def validate_structure(structure: Structure, max_atoms: int | None = None) -> None:
    """Refuse structures the non-spin-polarised el-ph protocol cannot compute.

    The shared check of every structure-reading command,
    :func:`workflows.structures.check_structure` (same checks, same messages).

    Raises
    ------
    BeteInputError
        A :class:`~workflows.structures.StructureCheckError`.
    """
    check_structure(structure, max_atoms=max_atoms)


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

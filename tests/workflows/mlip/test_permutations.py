"""Composed supercell permutations equal phonopy's matched ones (no potential involved)."""

from __future__ import annotations

import numpy as np
import pytest
from phonopy import Phonopy
from phonopy.structure.cells import compute_all_sg_permutations
from pymatgen.core import Lattice, Structure
from pymatgen.io.phonopy import get_phonopy_structure

from tests.conftest import DATA
from workflows.mlip.flows import MLIPPhononMaker
from workflows.mlip.permutations import composed_permutations, composed_sg_permutations


def _symmetry_arguments(phonon: Phonopy) -> tuple:
    symmetry, cell = phonon.symmetry, phonon.supercell
    operations = symmetry.symmetry_operations
    return (cell.scaled_positions, operations["rotations"], operations["translations"],
            np.array(cell.cell.T, dtype="double", order="C"), symmetry.tolerance,
            cell.totuple()[2])


@pytest.mark.parametrize("cell_id", [1, 3, 241, 325])  # F-43m, Pm-3m, I4/mmm, Pnnm
def test_equal_to_phonopy_on_bete_net_supercells(cell_id):
    structure = Structure.from_file(DATA / "structures" / "bete-net" / f"{cell_id}.cif")
    maker = MLIPPhononMaker()
    phonon = Phonopy(get_phonopy_structure(structure), maker.supercell_matrix(structure),
                     primitive_matrix="P", symprec=maker.symprec)
    arguments = _symmetry_arguments(phonon)
    matched = compute_all_sg_permutations(*arguments)
    assert len(matched) > len(structure) * 8  # many lattice translations × rotations
    assert np.array_equal(composed_sg_permutations(*arguments), matched)
    with composed_permutations():
        again = Phonopy(get_phonopy_structure(structure), maker.supercell_matrix(structure),
                        primitive_matrix="P", symprec=maker.symprec)
    assert np.array_equal(again.symmetry.atomic_permutations, matched)


def test_translation_outside_the_pure_ones_is_matched_directly():
    """Inversion about two centres when only the identity translation is listed."""
    rocksalt = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    supercell = rocksalt * (2, 2, 2)
    positions = supercell.frac_coords
    types = [site.specie.Z for site in supercell]
    identity, inversion = np.eye(3, dtype="int64"), -np.eye(3, dtype="int64")
    rotations = np.array([identity, inversion, inversion])
    translations = np.array([[0, 0, 0], [0, 0, 0], [0.5, 0, 0]], dtype=float)
    lattice = np.array(supercell.lattice.matrix.T, order="C")
    matched = compute_all_sg_permutations(positions, rotations, translations, lattice, 1e-5,
                                          types)
    assert not np.array_equal(matched[1], matched[2])
    assert np.array_equal(composed_sg_permutations(positions, rotations, translations,
                                                   lattice, 1e-5, types), matched)

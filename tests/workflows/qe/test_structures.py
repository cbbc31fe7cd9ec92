"""Structure reading and preparation: every refusal names cause and fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import DummySpecies, Lattice, Species, Structure
from pymatgen.io.vasp import Poscar

from workflows.qe.errors import BeteInputError
from workflows.qe.structures import check_structure, prepare_structure, read_structure


def fcc_conventional(el: str = "Al", a: float = 4.04) -> Structure:
    return Structure(Lattice.cubic(a), [el] * 4,
                     [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


def p1_cell(n: int, seed: int = 0) -> Structure:
    """n atoms on a jittered grid of a 10 Å cell: no symmetry, no overlaps."""
    rng = np.random.default_rng(seed)
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)]) / 3.0
    coords = grid[:n] + rng.uniform(-0.02, 0.02, size=(n, 3))
    return Structure(Lattice.cubic(10.0), ["Al"] * n, coords)


def test_read_cif_poscar_json(tmp_path, bete_structures_dir):
    cif = read_structure(bete_structures_dir / "21.cif")
    assert cif.composition.reduced_formula == "Pb"
    al = fcc_conventional()
    Poscar(al).write_file(tmp_path / "POSCAR")
    (tmp_path / "al.json").write_text(json.dumps(al.as_dict()))
    al.to(filename=str(tmp_path / "al.cif"))
    for name in ("POSCAR", "al.json", "al.cif"):
        read = read_structure(tmp_path / name)
        assert len(read) == 4
        assert np.allclose(read.lattice.matrix, al.lattice.matrix)


def test_read_errors(tmp_path):
    with pytest.raises(BeteInputError, match="does not exist"):
        read_structure(tmp_path / "missing.cif")
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a cif\n")
    with pytest.raises(BeteInputError, match="cannot read a structure.*CIF"):
        read_structure(bad)
    odd = tmp_path / "structure.txt"
    odd.write_text("1 2 3\n")
    with pytest.raises(BeteInputError, match="cannot read a structure"):
        read_structure(odd)


def test_prepare_reduces_to_primitive_standard():
    prepared = prepare_structure(fcc_conventional(), max_atoms=16)
    assert len(prepared) == 1
    assert prepared.volume == pytest.approx(4.04**3 / 4)
    assert prepared.site_properties == {}


def test_prepare_strips_oxidation_states_and_properties():
    s = Structure(Lattice.cubic(4.0), [Species("Mg", 2), Species("O", -2)],
                  [[0, 0, 0], [.5, .5, .5]], site_properties={"charge": [2, -2]})
    prepared = prepare_structure(s, max_atoms=16)
    assert [str(x) for x in prepared.species] == ["Mg", "O"]
    assert prepared.site_properties == {}


def test_disordered_refused():
    s = Structure(Lattice.cubic(3.0), [{"Al": 0.5, "Mg": 0.5}], [[0, 0, 0]])
    with pytest.raises(BeteInputError, match="partial occupancy.*disordered"):
        prepare_structure(s, max_atoms=16)
    vacancy = Structure(Lattice.cubic(3.0), [{"Al": 0.9}], [[0, 0, 0]])
    with pytest.raises(BeteInputError, match="disordered"):
        prepare_structure(vacancy, max_atoms=16)


def test_magnetic_refused():
    s = fcc_conventional("Ni", 3.52)
    s.add_site_property("magmom", [0.6] * 4)
    with pytest.raises(BeteInputError, match="magnetic moment.*non-spin-polarised.*magmom"):
        prepare_structure(s, max_atoms=16)
    s.add_site_property("magmom", [0.0] * 4)  # explicit zero moments are fine
    assert len(prepare_structure(s, max_atoms=16)) == 1
    s.add_site_property("magmom", [None] * 4)
    assert len(prepare_structure(s, max_atoms=16)) == 1
    spin = Structure(Lattice.cubic(3.0), [Species("Fe", 2, spin=4)], [[0, 0, 0]])
    with pytest.raises(BeteInputError, match="non-spin-polarised"):
        prepare_structure(spin, max_atoms=16)


def test_too_many_atoms(monkeypatch):
    big = p1_cell(20)
    monkeypatch.delenv("BETE_MAX_ATOMS", raising=False)
    with pytest.raises(BeteInputError, match="20 atoms.*limit of 16.*BETE_MAX_ATOMS"):
        prepare_structure(big)  # limit from settings (default 16)
    monkeypatch.setenv("BETE_MAX_ATOMS", "24")
    assert len(prepare_structure(big)) == 20
    with pytest.raises(BeteInputError, match="limit of 8"):
        prepare_structure(big, max_atoms=8)
    # a large supercell that reduces to a small primitive cell is accepted
    assert len(prepare_structure(fcc_conventional() * (2, 2, 2), max_atoms=4)) == 1


def test_empty_refused():
    with pytest.raises(BeteInputError, match="no sites"):
        prepare_structure(Structure(Lattice.cubic(3.0), [], []), max_atoms=16)


def test_non_finite_refused():
    s = Structure(Lattice.cubic(3.0), ["Al"], [[0, 0, 0]])
    s._sites[0].frac_coords = np.array([np.nan, 0.0, 0.0])
    with pytest.raises(BeteInputError, match="non-finite"):
        check_structure(s)
    lat = Structure(Lattice([[np.inf, 0, 0], [0, 3, 0], [0, 0, 3]]), ["Al"], [[0, 0, 0]])
    with pytest.raises(BeteInputError, match="non-finite"):
        prepare_structure(lat, max_atoms=16)


def test_overlapping_and_dummy_refused():
    s = Structure(Lattice.cubic(4.0), ["Al", "Al"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(BeteInputError, match="overlapping"):
        prepare_structure(s, max_atoms=16)
    dummy = Structure(Lattice.cubic(4.0), [DummySpecies("X")], [[0, 0, 0]])
    with pytest.raises(BeteInputError, match="not a chemical element"):
        prepare_structure(dummy, max_atoms=16)


def test_not_a_structure():
    with pytest.raises(BeteInputError, match="pymatgen Structure"):
        prepare_structure("Al.cif", max_atoms=16)  # type: ignore[arg-type]

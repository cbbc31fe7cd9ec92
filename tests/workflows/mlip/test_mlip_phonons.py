"""Real SevenNet-0 / CHGNet phonons on one- and two-atom cells (no mock of the potential)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from stores.mlip_phonons import iter_mlip_phonons
from workflows.mlip import potentials as pots
from workflows.mlip.flows import MLIPPhononError, MLIPPhononMaker
from workflows.mlip.phonons import PotentialError, compute_mlip_phonons, mlip_phonon_document

BETE_NET = Path(__file__).resolve().parents[4] / "shared" / "structures" / "bete-net"


def fcc_al() -> Structure:
    """One-atom fcc Al, a = 4.04 Å."""
    return Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                      [0, 0.5, 0.5]]).get_primitive_structure()


@pytest.fixture
def store():
    s = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    s.connect()
    return s


@pytest.fixture
def count_forces(monkeypatch):
    """Count the potential's force evaluations (spies on the real calculator)."""
    calc = pots.calculator("sevennet-0")
    calls = {"n": 0}
    original = type(calc).calculate

    def spy(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(calc), "calculate", spy)
    return calls


def test_fcc_al_document_and_reuse(store, count_forces):
    doc = mlip_phonon_document(fcc_al(), "sevennet-0", store, source_id="Al")
    assert not doc["reused"] and count_forces["n"] >= 1
    assert doc["potential"] == "sevennet-0" and doc["potential_package"] == "sevenn"
    assert np.asarray(doc["site_dos_grid"]).shape == (1, 51)
    assert doc["dynamically_stable"] and doc["min_frequency_meV"] > -0.5
    # fcc Al: DFPT phonons reach ~40 meV; SevenNet-0 is ~20 % softer
    assert 10 < doc["mean_log_frequency_meV"] < 30 < doc["max_frequency_meV"] + 5 < 50
    w, site = np.asarray(doc["frequencies_meV"]), np.asarray(doc["site_dos"])
    assert np.trapezoid(site[0], w / 0.12398419843320026) == pytest.approx(3.0, rel=0.02)
    assert doc["n_supercell_atoms"] >= 27 and doc["settings"]["displacement_A"] == 0.01
    evaluations = count_forces["n"]
    again = mlip_phonon_document(fcc_al(), "sevennet-0", store)
    assert again["reused"] and count_forces["n"] == evaluations  # no force evaluation
    assert again["key"] == doc["key"]
    assert [d["formula"] for d in iter_mlip_phonons(store)] == ["Al"]


def test_key_depends_on_potential_and_settings():
    s = fcc_al()
    keys = {MLIPPhononMaker().key(s), MLIPPhononMaker(potential="chgnet").key(s),
            MLIPPhononMaker(displacement=0.02).key(s),
            MLIPPhononMaker(residual_forces=False).key(s)}
    assert len(keys) == 4


def mosi2_type_scau2() -> Structure:
    """ScAu2 (bete-net 241, MoSi2 type, I4/mmm): Au sits at a free z that DFT relaxed."""
    return Structure.from_spacegroup("I4/mmm", Lattice.tetragonal(3.51068, 8.697105),
                                     ["Sc", "Au"], [[0, 0, 0], [0, 0, 0.33641]]
                                     ).get_primitive_structure()


def test_one_way_displacements_with_residual_forces_match_both_ways(count_forces):
    """Fewer force evaluations, the same spectrum; the subtraction is what makes it right.

    SevenNet-0 leaves forces on the DFT-relaxed Au (checked below): one-way differences
    without subtracting them gave −93 meV modes (measured by removing the subtraction).
    On this cell phonopy's ± pairs happen to cancel them; on NiSe2 they do not (next test).
    """
    s = mosi2_type_scau2()
    both = compute_mlip_phonons(s, MLIPPhononMaker(residual_forces=False))
    n_both = count_forces["n"]
    one = compute_mlip_phonons(s, MLIPPhononMaker())
    assert count_forces["n"] - n_both == one.n_displacements < both.n_displacements == n_both
    assert one.settings["residual_forces"] and not both.settings["residual_forces"]
    supercell = s.copy()
    supercell.make_supercell(one.supercell_matrix)
    atoms = supercell.to_ase_atoms()
    atoms.calc = pots.calculator("sevennet-0")
    assert np.abs(atoms.get_forces()).max() > 0.05  # eV/Å: 5 eV/Å² over 0.01 Å if kept
    assert one.min_frequency_meV == pytest.approx(both.min_frequency_meV, abs=0.05)
    assert one.mean_log_frequency_meV == pytest.approx(both.mean_log_frequency_meV, rel=0.01)
    assert one.max_frequency_meV == pytest.approx(both.max_frequency_meV, rel=0.01)
    np.testing.assert_allclose(one.site_dos_grid, both.site_dos_grid,
                               atol=0.02 * np.max(both.site_dos_grid))


@pytest.mark.slow
def test_no_download_with_the_network_off(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("sevennet-0", "chgnet"):
        pots._calculator.cache_clear()
        pots._covered.cache_clear()
        doc = compute_mlip_phonons(fcc_al(), MLIPPhononMaker(potential=name))
        assert np.isfinite(doc.mean_log_frequency_meV)
    pots._calculator.cache_clear()
    pots._covered.cache_clear()


@pytest.mark.skipif(not (BETE_NET / "0.cif").exists(), reason="needs ../shared/structures")
def test_bcc_cs_sevennet_is_an_error_and_not_stored(store):
    cs = Structure.from_file(BETE_NET / "0.cif")
    assert cs.composition.reduced_formula == "Cs"
    with pytest.raises(MLIPPhononError, match="zero forces"):
        mlip_phonon_document(cs, "sevennet-0", store)
    assert list(iter_mlip_phonons(store)) == []


def test_bad_inputs_are_one_line_errors(store):
    with pytest.raises(PotentialError, match="unknown potential 'mace'.*sevennet-0"):
        mlip_phonon_document(fcc_al(), "mace", store)
    po = Structure(Lattice.cubic(3.36), ["Po"], [[0, 0, 0]])
    with pytest.raises(PotentialError, match="does not cover Po"):
        mlip_phonon_document(po, "sevennet-0", store)
    disordered = Structure(Lattice.cubic(3.0), [{"Al": 0.5, "Mg": 0.5}], [[0, 0, 0]])
    with pytest.raises(PotentialError, match="partial occupancies"):
        mlip_phonon_document(disordered, "sevennet-0", store)
    with pytest.raises(MLIPPhononError, match="above the limit of 10"):
        mlip_phonon_document(fcc_al(), maker=MLIPPhononMaker(max_supercell_atoms=10),
                             store=store)
    assert list(iter_mlip_phonons(store)) == []


@pytest.mark.slow
@pytest.mark.skipif(not (BETE_NET / "325.cif").exists(), reason="needs ../shared/structures")
def test_residual_forces_make_the_spectrum_independent_of_the_displacement():
    """NiSe2 (bete-net 325, Pnnm): harmonic frequencies must not depend on the step.

    phonopy's ± default leaves the residual forces in: its lowest mode moves with the step
    (−22 meV at 0.005 Å, −7 meV at 0.02 Å, measured); subtracted, the cell is stable at both.
    """
    s = Structure.from_file(BETE_NET / "325.cif")
    small, large = (compute_mlip_phonons(s, MLIPPhononMaker(displacement=d))
                    for d in (0.005, 0.02))
    for doc in (small, large):
        assert doc.min_frequency_meV > -0.05
    assert small.max_frequency_meV == pytest.approx(large.max_frequency_meV, rel=0.01)
    assert small.mean_log_frequency_meV == pytest.approx(large.mean_log_frequency_meV, rel=0.01)
    both_ways = compute_mlip_phonons(s, MLIPPhononMaker(displacement=0.005,
                                                        residual_forces=False))
    assert both_ways.min_frequency_meV < -10.0

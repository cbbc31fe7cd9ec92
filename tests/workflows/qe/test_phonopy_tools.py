"""phonopy on the real q2r.x force constants of fcc Al (tests/data/qe/al)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from pymatgen.io.ase import AseAtomsAdaptor

from workflows.common.units import CM1_TO_MEV, THZ_TO_MEV
from workflows.qe.parsers import parse_ph_output, parse_phonon_dos
from workflows.qe.phonopy_tools import (
    band_structure,
    high_symmetry_path,
    load_q2r_phonopy,
    phonon_dos,
    stability_check,
)

AL = Path(__file__).resolve().parents[2] / "data" / "qe" / "al"


@pytest.fixture(scope="module")
def structure():
    return AseAtomsAdaptor.get_structure(read(AL / "scf.in", format="espresso-in"))


@pytest.fixture(scope="module")
def phonon(structure):
    return load_q2r_phonopy(AL / "al.fc", structure)


def test_dos_matches_matdyn(phonon):
    dos = phonon_dos(phonon, mesh=(20, 20, 20))
    matdyn = parse_phonon_dos(AL / "al.phdos")
    assert dos.highest_frequency_meV() == pytest.approx(matdyn.highest_frequency_meV(), rel=0.03)
    assert np.trapezoid(dos.total, dos.frequencies_meV) == pytest.approx(3.0, rel=0.01)
    assert dos.projected.shape == (1, dos.frequencies_meV.size)
    np.testing.assert_allclose(dos.projected.sum(axis=0), dos.total)


def test_stability_al_is_stable(phonon):
    check = stability_check(phonon, mesh=(16, 16, 16))
    assert check.dynamically_stable
    assert check.min_frequency_meV > -0.5 and check.threshold_meV == -0.5


def test_stability_flags_negative_frequencies(structure):
    phonon = load_q2r_phonopy(AL / "al.fc", structure)
    phonon.force_constants = -phonon.force_constants  # every mode imaginary
    check = stability_check(phonon, mesh=(4, 4, 4))
    assert not check.dynamically_stable and check.min_frequency_meV < -10


def test_phonopy_reproduces_ph_frequencies_at_computed_q(phonon):
    """The q2r force constants are exact at the ph.x q points (L and X here)."""
    for q in parse_ph_output(AL / "ph.out").q_points[1:]:
        freqs = phonon.get_frequencies(q.q_crystal) * THZ_TO_MEV
        np.testing.assert_allclose(np.sort(freqs), np.sort(q.frequencies_meV), rtol=1e-3)


def test_band_structure(phonon, structure):
    bands = band_structure(phonon, structure, npoints=11)
    assert bands.labels[0] == "$\\Gamma$" and "X" in bands.labels and "L" in bands.labels
    freqs = np.concatenate(bands.frequencies_meV)
    assert freqs.shape[1] == 3
    # the top of the Al spectrum is the longitudinal mode at L (ph.x: 294.44 cm-1)
    assert freqs.max() == pytest.approx(294.441 * CM1_TO_MEV, rel=2e-3)
    assert freqs.min() > -0.1


def test_path_is_in_own_reciprocal_basis(structure):
    segments, labels, connections = high_symmetry_path(structure, npoints=5)
    assert len(segments) == len(connections) and connections[-1] is False
    assert len(labels) == len(segments) + 1 + connections.count(False) - 1
    np.testing.assert_allclose(segments[0][0], 0.0, atol=1e-12)  # starts at Γ


def test_wrong_mass_count(structure):
    with pytest.raises(ValueError, match="one mass per site"):
        load_q2r_phonopy(AL / "al.fc", structure, masses=[1.0, 2.0])

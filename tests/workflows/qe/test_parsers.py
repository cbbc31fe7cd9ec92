"""Parsers against real QE 6.7 outputs harvested in tests/data/qe (no QE needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workflows.common.physics import moments
from workflows.common.units import CM1_TO_MEV, RY_TO_EV, RY_TO_MEV
from workflows.qe import parsers

DATA = Path(__file__).resolve().parents[2] / "data" / "qe"
AL = DATA / "al"
SI = DATA / "si"


def test_pw_output_al_dense_scf():
    out = parsers.parse_pw_output(AL / "scf_dense.out")
    assert out.total_energy_eV == pytest.approx(-5.03811753 * RY_TO_EV)
    assert out.fermi_energy_eV == pytest.approx(7.8052)
    assert out.pressure_kbar == pytest.approx(-5.51)
    assert out.converged and out.job_done
    assert out.n_scf_iterations == 7
    assert out.n_bands == 10 and out.n_electrons == pytest.approx(3.0)
    assert out.n_kpoints == 29
    assert out.qe_version == "6.7MaX"
    assert out.wall_time_s == pytest.approx(2.97, abs=0.01)


def test_pw_output_from_text_and_unconverged():
    text = (DATA / "failures" / "al_scf_maxstep.out").read_text()
    out = parsers.parse_pw_output(text)
    assert not out.converged
    assert out.n_scf_iterations is None
    assert out.total_energy_eV is None


@pytest.mark.parametrize("stamp, seconds", [("7.49s", 7.49), ("2m23.45s", 143.45),
                                            ("1h 2m", 3720.0)])
def test_wall_time_formats(stamp, seconds):
    text = f"     PHONON       :     1.00s CPU   {stamp} WALL\n"
    assert parsers.parse_wall_time_s(text) == pytest.approx(seconds)


def test_metal_check_al_is_metal_from_xml_and_output():
    gap_xml = parsers.band_gap_from_xml(AL / "data-file-schema.xml")
    gap_out = parsers.band_gap_from_pw_output(AL / "scf.out")
    for gap in (gap_xml, gap_out):
        assert gap.is_metal and gap.gap_eV == 0.0
    assert gap_xml.fermi_energy_eV == pytest.approx(7.2443, abs=1e-3)


def test_metal_check_si_is_insulator_from_xml_and_output():
    gap_xml = parsers.band_gap_from_xml(SI / "data-file-schema.xml")
    gap_out = parsers.band_gap_from_pw_output(SI / "scf.out")
    for gap in (gap_xml, gap_out):
        assert not gap.is_metal
        # PBE Si at a 4x4x4 grid: Γ → near-X gap, about 0.6-0.7 eV
        assert 0.4 < gap.gap_eV < 1.0
    assert gap_xml.gap_eV == pytest.approx(gap_out.gap_eV, abs=1e-3)


def test_fixed_occupations_si():
    out = parsers.parse_pw_output(SI / "scf_fixed.out")
    assert out.fermi_energy_eV is None
    assert (out.highest_occupied_eV, out.lowest_unoccupied_eV) == pytest.approx((6.2701, 6.9739))
    gap_xml = parsers.band_gap_from_xml(SI / "data-file-schema-fixed.xml")
    gap_out = parsers.band_gap_from_pw_output(SI / "scf_fixed.out")
    for gap in (gap_xml, gap_out):
        assert not gap.is_metal
        assert gap.gap_eV == pytest.approx(6.9739 - 6.2701, abs=1e-3)


def test_band_gap_threshold_and_crossing():
    assert parsers.band_gap([[0.0, 0.05]], 0.01).is_metal  # tiny gap counts as metal
    assert parsers.band_gap([[0.0, 0.05]], 0.01, metal_gap_eV=0.01).is_metal is False
    crossing = parsers.band_gap([[0.0, 1.0], [2.0, 3.0]], 1.5)
    assert crossing.is_metal and crossing.gap_eV == 0.0


def test_ph_output_al():
    ph = parsers.parse_ph_output(AL / "ph.out")
    assert ph.q_grid == (2, 2, 2) and ph.n_irreducible_q == 3
    assert ph.irreducible_q_2pi_alat.shape == (3, 3)
    assert len(ph.q_points) == 3 and ph.job_done and ph.qe_version == "6.7MaX"
    gamma, l_point, x_point = ph.q_points
    np.testing.assert_allclose(l_point.q_crystal, [0, 0, -0.5], atol=1e-5)
    np.testing.assert_allclose(x_point.q_crystal, [0, -0.5, -0.5], atol=1e-5)
    np.testing.assert_allclose(x_point.q_cart_2pi_alat, [-0.707106781, 0, 0])
    np.testing.assert_allclose(l_point.frequencies_meV,
                               np.array([102.767945, 102.767945, 294.441057]) * CM1_TO_MEV)
    assert abs(gamma.frequencies_meV).max() < 1.0  # acoustic at Γ (no ASR in ph.x)
    assert len(x_point.elph) == 10
    sig = x_point.elph[3]
    assert sig.sigma_Ry == pytest.approx(0.020)
    assert sig.dos_ef_states_per_spin_Ry == pytest.approx(2.569285)
    # modes 1-2 are degenerate at X: only their sum is defined
    np.testing.assert_allclose(sig.lambdas, [4.9794, 7.0416, 0.1964])
    np.testing.assert_allclose(sig.gammas_GHz, [19.60, 27.72, 27.74])
    np.testing.assert_allclose(x_point.elph[0].lambdas, [24.9185, 35.7768, 0.4257])


def test_ph_output_recovered_run():
    ph = parsers.parse_ph_output(DATA / "failures" / "al_ph_recover.out")
    # a recovered run does not print the q-grid list again
    assert ph.q_grid is None and ph.n_irreducible_q == len(ph.q_points) >= 1
    assert ph.job_done
    full = parsers.parse_ph_output(AL / "ph.out")
    np.testing.assert_allclose(ph.q_points[-1].frequencies_meV,
                               full.q_points[-1].frequencies_meV, rtol=1e-3)


def test_a2f_dos_files_all_broadenings():
    files = parsers.parse_a2f_dos_files(AL)
    assert [f.index for f in files] == list(range(1, 11))
    first = files[0]
    assert first.frequencies_meV[0] == pytest.approx(0.911265e-05 * RY_TO_MEV)
    assert first.a2f_modes.shape == (3, first.frequencies_meV.size)
    np.testing.assert_allclose(first.a2f_modes.sum(axis=0), first.a2f, rtol=1e-4, atol=1e-9)
    assert files[3].lambda_qe == pytest.approx(1.2118211144126305)


def test_a2f_dos_nan_raises_with_protocol_advice(tmp_path):
    text = (AL / "a2F.dos4").read_text().splitlines()
    text[10] = text[10].replace(text[10].split()[2], "NaN", 1)
    bad = tmp_path / "a2F.dos4"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"a2F\.dos4.*asr='simple'.*asr='no'"):
        parsers.parse_a2f_dos(bad)


def test_fortran_exponent_without_e(tmp_path):
    path = tmp_path / "a2F.dos1"
    path.write_text(" # comment\n 0.1E-03 0.5-100 0.1-100\n 0.2E-03 0.1E-01 0.1E-01\n"
                    " lambda = 0.5 Delta = 0.1\n")
    dos = parsers.parse_a2f_dos(path)
    assert dos.a2f[0] == pytest.approx(0.5e-100)
    assert dos.lambda_qe == pytest.approx(0.5)


def test_lambda_file():
    lam = parsers.parse_lambda_file(AL / "lambda")
    assert len(lam.rows) == 10
    np.testing.assert_allclose(lam.sigmas_Ry, np.arange(1, 11) * 0.005)
    row = lam.rows[3]
    assert (row.sigma_Ry, row.lambda_, row.dos_ef, row.omega_ln_K) == pytest.approx(
        (0.02, 1.2186, 2.5693, 122.6191))


def test_phonon_dos():
    dos = parsers.parse_phonon_dos(AL / "al.phdos")
    assert dos.per_site.shape == (1, dos.frequencies_meV.size)
    assert dos.frequencies_meV[1] == pytest.approx(1.9999975615 * CM1_TO_MEV)
    # 3 modes per atom: DOS per meV integrates to 3
    assert np.trapezoid(dos.total_per_meV, dos.frequencies_meV) == pytest.approx(3.0, rel=0.01)
    assert dos.lowest_frequency_meV() == pytest.approx(2.0 * CM1_TO_MEV, rel=1e-3)
    assert dos.highest_frequency_meV() == pytest.approx(294.0 * CM1_TO_MEV, rel=1e-3)


@pytest.mark.parametrize("index", range(10))
def test_lambda_from_a2f_matches_lambda_file(index):
    """physics.moments on each parsed a2F.dos<i> reproduces matdyn's λ within 2 %."""
    a2f = parsers.parse_a2f_dos_files(AL)[index]
    row = parsers.parse_lambda_file(AL / "lambda").rows[index]
    lam = moments(a2f.frequencies_meV, a2f.a2f).lambda_
    assert lam == pytest.approx(row.lambda_, rel=0.02)
    assert lam == pytest.approx(a2f.lambda_qe, rel=1e-4)
    wlog = moments(a2f.frequencies_meV, a2f.a2f).omega_log_K
    assert wlog == pytest.approx(row.omega_ln_K, rel=0.02)

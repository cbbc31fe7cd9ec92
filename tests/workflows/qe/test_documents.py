"""Task documents from the harvested real Al run (no QE needed)."""

from __future__ import annotations

import pytest

from stores.schemas import ScfSummary
from tests.conftest import DATA
from workflows.qe.documents import HIGH_PRESSURE_KBAR, elph_document, scf_warnings


def test_document_from_real_al_outputs(al_run_dir, al_run_input_set):
    input_set = al_run_input_set
    scf = ScfSummary(pressure_kbar=5.0, is_metal=True, band_gap_eV=0.0)
    doc = elph_document(al_run_dir, input_set, "fast", "al", "h" * 64, scf, "6.7MaX", "crystal")
    assert [b.sigma_Ry for b in doc.broadenings] == pytest.approx(
        [0.005 * i for i in range(1, 11)])
    ref = doc.broadenings[3]
    assert doc.reference_sigma_Ry == pytest.approx(0.02) and doc.lambda_ == ref.lambda_
    for b in doc.broadenings:  # moments of the stored α²F vs QE's own lambda file
        assert b.lambda_ == pytest.approx(b.qe_lambda, rel=0.02)
    assert doc.status == "completed" and doc.dynamically_stable
    assert -0.5 < doc.dense_mesh_min_frequency_meV < 0.5  # phonopy on q2r's force constants
    assert doc.tc_allen_dynes_K > doc.tc_mcmillan_K > 0
    assert len(doc.phdos.site_dos) == 1 and doc.warnings == []
    # 2³ q: the q-point sum is stored, but is itself too coarse to judge the interpolation
    assert doc.lambda_q_sum == pytest.approx(4.639, abs=0.001)
    assert doc.pseudopotentials["Al"].md5 == input_set.pseudo_md5["Al"]


def test_high_pressure_gets_a_warning():
    assert scf_warnings(ScfSummary(pressure_kbar=HIGH_PRESSURE_KBAR / 2)) == []
    (warning,) = scf_warnings(ScfSummary(pressure_kbar=-2.5 * HIGH_PRESSURE_KBAR))
    assert "kbar" in warning and "relax" in warning


def test_imaginary_modes_only_between_q_points_are_named(pb_standard_input_set):
    """Real standard-preset Pb: stable at every computed q, unstable in the interpolation."""
    doc = elph_document(DATA / "qe" / "pb-standard", pb_standard_input_set, "standard", "pb",
                        "h" * 64, ScfSummary(pressure_kbar=-1.2, is_metal=True, band_gap_eV=0.0),
                        "6.7MaX", "crystal")
    assert doc.status == "unstable" and not doc.dynamically_stable
    assert doc.min_frequency_meV == pytest.approx(-1.07, abs=0.01)
    assert doc.q_point_min_frequency_meV == pytest.approx(2.47, abs=0.05)  # 0.5976 THz
    assert any("between the computed q points" in w and "4x4x4" in w for w in doc.warnings)
    assert doc.lambda_ == pytest.approx(1.461, abs=0.002)
    assert doc.lambda_q_sum == pytest.approx(1.018, abs=0.001)  # no interpolation: 44 % lower
    assert doc.broadenings[0].lambda_q_sum == pytest.approx(2.871, abs=0.001)
    assert any("+44% off λ summed over the computed q points (1.018)" in w
               for w in doc.warnings)


def test_q_point_check_sees_imaginary_modes_at_q_points(tmp_path):
    from workflows.qe.qpoints import computed_q_points, q_point_min_frequency_meV

    assert q_point_min_frequency_meV(computed_q_points(tmp_path)) is None  # no ph.out: no claim
    text = (DATA / "qe" / "pb-standard" / "ph.out").read_text()
    fan = tmp_path / "ph_q2"
    fan.mkdir()
    (fan / "ph.out").write_text(text.replace("freq (    1) =       0.597607 [THz] =      19.934",
                                             "freq (    1) =      -0.597607 [THz] =     -19.934",
                                             1))
    lowest = q_point_min_frequency_meV(computed_q_points(tmp_path))
    assert lowest == pytest.approx(-2.47, abs=0.05)
    # a ph.out that lost the q points before a start_q resume makes no claim
    cut = text[:text.index("     Calculation of q", text.index("Calculation of q") + 1)]
    (fan / "ph.out").write_text(cut)
    assert q_point_min_frequency_meV(computed_q_points(tmp_path)) is None

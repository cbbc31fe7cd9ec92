import json

import numpy as np
import pytest

from workflows.common.physics import (
    allen_dynes_tc,
    cumulative_lambda,
    einstein_a2f,
    is_dynamically_stable,
    lowest_frequency_meV,
    mcmillan_allen_dynes_tc,
    moments,
    superconductivity,
)
from workflows.common.units import MEV_TO_K


@pytest.mark.parametrize("omega_e, lam", [(10.0, 0.5), (35.0, 1.2), (80.0, 2.0)])
def test_einstein_moments_are_analytic(omega_e, lam):
    w = np.linspace(0.0, 120.0, 240001)
    m = moments(w, einstein_a2f(w, omega_e, lam, width_meV=0.05))
    assert m.lambda_ == pytest.approx(lam, rel=1e-4)
    assert m.omega_log_meV == pytest.approx(omega_e, rel=1e-4)
    assert m.omega_2_meV == pytest.approx(omega_e, rel=1e-4)
    assert m.omega_log_K == pytest.approx(omega_e * MEV_TO_K, rel=1e-4)


def test_two_einstein_modes_combine_as_weighted_means():
    w = np.linspace(0.0, 100.0, 200001)
    a2f = einstein_a2f(w, 10.0, 0.4, 0.1) + einstein_a2f(w, 40.0, 0.6, 0.1)
    m = moments(w, a2f)
    assert m.lambda_ == pytest.approx(1.0, rel=1e-4)
    assert m.omega_log_meV == pytest.approx(np.exp(0.4 * np.log(10) + 0.6 * np.log(40)), rel=1e-4)
    assert m.omega_2_meV == pytest.approx(np.sqrt(0.4 * 100 + 0.6 * 1600), rel=1e-4)


def test_allen_dynes_hand_computed():
    lam, wlog, w2, mu = 1.0, 100.0, 120.0, 0.1
    base = wlog / 1.2 * np.exp(-1.04 * 2 / (1 - 0.1 * 1.62))
    l1 = 2.46 * 1.38
    l2 = 1.82 * 1.63 * 1.2
    f1 = (1 + (1 / l1) ** 1.5) ** (1 / 3)
    f2 = 1 + 0.2 / (1 + l2**2)
    assert allen_dynes_tc(lam, wlog, w2, mu) == pytest.approx(base * f1 * f2, rel=1e-12)
    assert mcmillan_allen_dynes_tc(lam, wlog, mu) == pytest.approx(base, rel=1e-12)


def test_no_pairing_gives_zero_tc():
    assert allen_dynes_tc(0.1, 100.0, 100.0, mu_star=0.15) == 0.0
    assert allen_dynes_tc(0.0, 0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="finite"):
        allen_dynes_tc(float("nan"), 1.0, 1.0)


def test_cumulative_lambda_ends_at_lambda():
    w = np.linspace(0.0, 60.0, 6001)
    a2f = einstein_a2f(w, 20.0, 0.8, 2.0)
    assert cumulative_lambda(w, a2f)[-1] == pytest.approx(moments(w, a2f).lambda_, rel=1e-3)


def test_non_finite_spectrum_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        moments([1.0, 2.0, 3.0], [0.1, float("nan"), 0.2])
    with pytest.raises(ValueError, match="shape"):
        moments([1.0, 2.0], [0.1, 0.2, 0.3])


def test_stability_threshold():
    w = np.linspace(-5, 30, 141)
    dos = np.where(w > 2, 1.0, 0.0)
    assert is_dynamically_stable(w, dos)
    dos_bad = dos + np.where(np.abs(w + 3) < 0.3, 0.5, 0.0)
    assert lowest_frequency_meV(w, dos_bad) == pytest.approx(-3.0, abs=0.3)
    assert not is_dynamically_stable(w, dos_bad)
    assert is_dynamically_stable(w, dos_bad, threshold_meV=-10.0)


def test_fast_v1_record_moments_reproduced(fast_v1_dir):
    """The records' own moments (computed independently) at every broadening."""
    n = 0
    for path in sorted(fast_v1_dir.glob("*.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") != "ok":
            continue
        for b in rec["a2F"]:
            s = superconductivity(rec["a2F_frequency_meV"], b["a2F"], mu_star=0.10)
            assert s.lambda_ == pytest.approx(b["lambda_"], rel=1e-6)
            assert s.omega_log_K == pytest.approx(b["omega_log_K"], rel=1e-6)
            assert s.omega_2_K == pytest.approx(b["omega_2_K"], rel=1e-6)
            assert s.tc_allen_dynes_K == pytest.approx(b["tc_allen_dynes_K"], rel=1e-5, abs=1e-9)
            n += 1
    assert n >= 100

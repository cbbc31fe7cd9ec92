import numpy as np
import pytest

from betenet_model import GRID_MEV, resample_to_grid, savgol_smooth


def smooth_a2f(w):
    a = 0.5 * np.exp(-(((w - 30) / 8) ** 2)) + 0.3 * np.exp(-(((w - 60) / 5) ** 2))
    return a * (w / (w + 2)) ** 2


def lam(w, a2f):
    from workflows.common.physics import moments

    return moments(w, a2f).lambda_


def test_grid():
    assert GRID_MEV.shape == (51,)
    assert GRID_MEV[0] == 0.25 and GRID_MEV[-1] == 100.25
    np.testing.assert_allclose(np.diff(GRID_MEV), 2.0)


def test_savgol_matches_scipy():
    signal = pytest.importorskip("scipy.signal")
    y = np.random.default_rng(0).random((3, 400))
    np.testing.assert_allclose(
        savgol_smooth(y, 101, 3), signal.savgol_filter(y, 101, 3), atol=1e-12
    )
    np.testing.assert_allclose(
        savgol_smooth(y[0], 11, 2), signal.savgol_filter(y[0], 11, 2), atol=1e-12
    )


@pytest.mark.parametrize("n_points", [801, 3001, 157])
def test_lambda_conserved_inside_the_grid(n_points):
    w = np.linspace(0.0, 80.0, n_points)
    res = resample_to_grid(w, smooth_a2f(w))
    assert res.values.shape == (51,)
    assert np.all(res.values >= 0)
    assert lam(GRID_MEV, res.values) == pytest.approx(lam(w, smooth_a2f(w)), rel=0.02)
    assert float(res.weight_above_grid) == 0.0
    assert float(res.weight_total) == pytest.approx(np.trapezoid(smooth_a2f(w), w), rel=1e-6)


def test_weight_above_grid_is_recorded():
    w = np.linspace(0.0, 140.0, 1401)
    a = np.exp(-(((w - 40) / 6) ** 2)) + np.exp(-(((w - 120) / 6) ** 2))
    res = resample_to_grid(w, a)
    expected = np.trapezoid(np.where(w >= 100.25, a, 0), w)
    assert float(res.weight_above_grid) == pytest.approx(expected, rel=0.02)
    assert float(res.fraction_above_grid) == pytest.approx(0.5, rel=0.02)


def test_negative_frequencies_and_clipping():
    w = np.linspace(-5.0, 60.0, 651)
    a = np.exp(-(((w - 20) / 4) ** 2)) - 0.2 * np.exp(-((w / 1.0) ** 2))
    res = resample_to_grid(w, a)
    assert np.all(res.values >= 0)
    assert float(res.weight_below_grid) < 0  # the negative dip lies below 0.25 meV


def test_stack_of_site_dos_equals_rows():
    w = np.linspace(0.0, 90.0, 451)
    rows = np.stack([smooth_a2f(w), np.exp(-(((w - 50) / 10) ** 2)), np.zeros_like(w)])
    res = resample_to_grid(w, rows)
    assert res.values.shape == (3, 51) and res.weight_total.shape == (3,)
    for k in range(3):
        np.testing.assert_allclose(res.values[k], resample_to_grid(w, rows[k]).values, atol=1e-12)


@pytest.mark.parametrize(
    ("freq", "values", "message"),
    [
        ([1.0], [1.0], "at least 2"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "frequency axis"),
        ([1.0, 1.0, 3.0], [1.0, 2.0, 3.0], "increasing"),
        ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], "non-finite"),
    ],
)
def test_bad_spectra(freq, values, message):
    with pytest.raises(ValueError, match=message):
        resample_to_grid(freq, values)

"""The torch Allen–Dynes Tc equals workflows.common.physics on real and analytic spectra."""

import numpy as np
import pytest
import torch

from betenet_model import GRID_MEV
from betenet_model.tc import DEFAULT_MU_STAR, MEV_TO_K, allen_dynes_tc, log_tc_loss
from stores.datasets import load_fast_v1
from workflows.common import physics, units
from workflows.ml.data import record_sample


def test_constants_are_the_projects():
    assert MEV_TO_K == units.MEV_TO_K and DEFAULT_MU_STAR == physics.DEFAULT_MU_STAR


@pytest.mark.parametrize("mu_star", [0.10, 0.13])
def test_equals_physics_on_fast_v1_spectra(mu_star):
    records = load_fast_v1(None, drop_unstable=False)
    assert len(records) >= 16
    tcs = []
    for rec in records:
        # native grid of the record
        ref = physics.superconductivity(rec.frequencies_meV, rec.a2f, mu_star=mu_star)
        got = allen_dynes_tc(torch.tensor(rec.frequencies_meV), torch.tensor(rec.a2f), mu_star)
        assert float(got) == pytest.approx(ref.tc_allen_dynes_K, rel=1e-9, abs=1e-9)
        tcs.append(ref.tc_allen_dynes_K)
        # the model grid, batched: what training sees
        grid = record_sample(rec).target
        ref_grid = physics.superconductivity(GRID_MEV, grid, mu_star=mu_star).tc_allen_dynes_K
        batch = torch.tensor(np.stack([grid, grid]))
        got_grid = allen_dynes_tc(torch.tensor(GRID_MEV), batch, mu_star)
        np.testing.assert_allclose(got_grid.numpy(), [ref_grid, ref_grid], rtol=1e-9, atol=1e-9)
    assert max(tcs) > 5 and min(tcs) < 5          # the test covers hits and non-hits


@pytest.mark.parametrize("omega_e, lam", [(5.0, 0.4), (20.0, 1.0), (40.0, 2.5), (10.0, 0.1)])
def test_equals_physics_on_einstein_spectra(omega_e, lam):
    w = np.linspace(0.01, 100, 100001)
    a2f = physics.einstein_a2f(w, omega_e, lam, width_meV=0.2)
    got = float(allen_dynes_tc(torch.tensor(w), torch.tensor(a2f)))
    # analytic: λ, ω_log = ω₂ = ω_E for a narrow Einstein peak
    analytic = physics.allen_dynes_tc(lam, omega_e * MEV_TO_K, omega_e * MEV_TO_K)
    assert got == pytest.approx(physics.superconductivity(w, a2f).tc_allen_dynes_K, rel=1e-9,
                                abs=1e-12)
    assert got == pytest.approx(analytic, rel=1e-2, abs=1e-9)   # finite peak width
    if lam <= DEFAULT_MU_STAR:
        assert got == 0.0


def test_gradient_is_finite_and_points_the_right_way():
    base = physics.einstein_a2f(GRID_MEV, 20.0, 0.8, width_meV=3.0)
    spectra = torch.tensor(np.stack([base, np.zeros(51), 0.01 * base]), requires_grad=True)
    tc = allen_dynes_tc(torch.tensor(GRID_MEV), spectra)
    assert tc[1] == 0 and tc[2] == 0 and tc[0] > 1
    tc.sum().backward()
    assert torch.isfinite(spectra.grad).all()
    # scaling the spectrum up (more coupling) raises Tc
    assert float((spectra.grad[0] * spectra[0]).sum()) > 0
    # log loss: zero at the truth, pulls the prediction toward it
    pred = tc[0].detach().clone().requires_grad_(True)
    assert float(log_tc_loss(pred, pred.detach())) == 0.0
    log_tc_loss(pred, pred.detach() + 5.0).backward()
    assert pred.grad < 0


def test_supervised_loss_mixes_spectrum_and_tc_rows():
    from betenet_model.training import supervised_loss, weighted_mse

    torch.manual_seed(0)
    pred = torch.rand(4, 51, dtype=torch.float64) * 0.3
    target = torch.rand(4, 51, dtype=torch.float64) * 0.3
    w = torch.tensor([1.0, 2.0, 1.0, 3.0], dtype=torch.float64)
    # no Tc labels: exactly the α²F MSE
    assert torch.equal(supervised_loss(pred, target, None, w), weighted_mse(pred, target, w))
    # rows 2, 3 carry only Tc
    target[2:] = float("nan")
    tc = torch.tensor([float("nan"), float("nan"), 3.0, 12.0], dtype=torch.float64)
    grid = torch.tensor(GRID_MEV)
    expected = weighted_mse(pred[:2], target[:2], w[:2]) + 0.5 * log_tc_loss(
        allen_dynes_tc(grid, pred[2:]), tc[2:], w[2:])
    got = supervised_loss(pred, target, tc, w, tc_loss_weight=0.5)
    assert float(got) == pytest.approx(float(expected), rel=1e-12)
    # the Tc rows get gradient, through the predicted spectrum
    p = pred.clone().requires_grad_(True)
    supervised_loss(p, target, tc, w, tc_loss_weight=0.5).backward()
    assert torch.isfinite(p.grad).all() and p.grad[2:].abs().sum() > 0


def test_moment_loss_is_the_lambda_error_for_a_scaled_spectrum():
    from betenet_model.tc import moment_loss, spectral_moments

    grid = torch.tensor(GRID_MEV)
    target = torch.stack([torch.tensor(record_sample(r, "cso").target)
                          for r in load_fast_v1()[:3]])
    lam = spectral_moments(grid, target)[0]
    assert float(moment_loss(grid, target, target)) == 0.0
    # ×c scales λ by c and leaves ω_log: the loss is the mean of ((c − 1) λ)²
    got = moment_loss(grid, 1.5 * target, target)
    assert float(got) == pytest.approx(float(((0.5 * lam) ** 2).mean()), rel=1e-10)
    w = torch.tensor([1.0, 0.0, 3.0], dtype=torch.float64)
    got_w = moment_loss(grid, 1.5 * target, target, w)
    assert float(got_w) == pytest.approx(float((0.25 * lam**2 * w).sum() / 4.0), rel=1e-10)
    # a shift of the weight to higher frequency moves ω_log, and the loss sees it
    shifted = torch.roll(target, 5, dims=1)
    assert float(moment_loss(grid, shifted, target)) > 0.01


def test_supervised_loss_adds_the_moment_term_on_spectrum_rows():
    from betenet_model.tc import moment_loss
    from betenet_model.training import TrainConfig, supervised_loss, weighted_mse

    torch.manual_seed(1)
    pred = torch.rand(3, 51, dtype=torch.float64) * 0.3
    target = torch.rand(3, 51, dtype=torch.float64) * 0.3
    w = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    grid = torch.tensor(GRID_MEV)
    expected = weighted_mse(pred, target, w) + 0.2 * moment_loss(grid, pred, target, w)
    got = supervised_loss(pred, target, None, w, moment_loss_weight=0.2)
    assert float(got) == pytest.approx(float(expected), rel=1e-12)
    with pytest.raises(ValueError, match="moment_loss_weight"):
        TrainConfig(moment_loss_weight=-1.0)

"""Differentiable Allen–Dynes Tc of predicted spectra (torch), for training on Tc-only labels.

The same formulas, integration rule and μ* default as :mod:`workflows.common.physics` (which
the model package cannot import; tests check the two agree): on a frequency grid ω (meV),
trapezoid rule over ω > 0.05 meV with α²F clipped at 0,

- λ = 2∫α²F/ω dω, ω_log = exp[(2/λ)∫α²F ln ω/ω dω], ω₂ = [(2/λ)∫α²F ω dω]^½;
- Tc = f1 f2 ω_log/1.2 · exp[−1.04(1+λ)/(λ − μ*(1+0.62λ))],
  f1 = [1+(λ/Λ1)^{3/2}]^{1/3}, f2 = 1 + (ω₂/ω_log − 1)λ²/(λ² + Λ2²),
  Λ1 = 2.46(1+3.8μ*), Λ2 = 1.82(1+6.3μ*)(ω₂/ω_log);
- Tc = 0 where λ ≤ 0 or λ − μ*(1+0.62λ) ≤ 0 (no gradient flows there).
"""

from __future__ import annotations

import torch

from .train_config import DEFAULT_MU_STAR

__all__ = ["DEFAULT_MU_STAR", "MEV_TO_K", "allen_dynes_tc", "log_tc_loss", "moment_loss",
           "spectral_moments"]

#: 1 meV in kelvin (= workflows.common.units.MEV_TO_K).
MEV_TO_K = 11.604518
_OMEGA_MIN_MEV = 0.05


def spectral_moments(frequencies_meV: torch.Tensor, a2f: torch.Tensor,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """λ, ω_log (K) and ω₂ (K) of spectra ``a2f (..., G)`` on ``frequencies_meV (G,)``.

    ω_log and ω₂ are 0 where λ = 0, as in :func:`workflows.common.physics.moments`.
    """
    mask = frequencies_meV > _OMEGA_MIN_MEV
    w = frequencies_meV[mask].to(a2f)
    f = a2f[..., mask].clamp(min=0.0)
    lam = 2.0 * torch.trapezoid(f / w, w, dim=-1)
    positive = lam > 0
    lam_safe = torch.where(positive, lam, torch.ones_like(lam))
    wlog = torch.exp(2.0 / lam_safe * torch.trapezoid(f * torch.log(w) / w, w, dim=-1))
    second = 2.0 / lam_safe * torch.trapezoid(f * w, w, dim=-1)
    w2 = torch.sqrt(torch.where(positive & (second > 0), second, torch.ones_like(second)))
    zero = torch.zeros_like(lam)
    return (torch.where(positive, lam, zero), torch.where(positive, wlog * MEV_TO_K, zero),
            torch.where(positive, w2 * MEV_TO_K, zero))


def allen_dynes_tc(frequencies_meV: torch.Tensor, a2f: torch.Tensor,
                   mu_star: float = DEFAULT_MU_STAR) -> torch.Tensor:
    """Allen–Dynes Tc (K, with f1·f2) of spectra ``a2f (..., G)``, differentiable.

    Parameters
    ----------
    frequencies_meV : Tensor, shape (G,)
        Ascending grid (meV), e.g. :data:`betenet_model.GRID_MEV`.
    a2f : Tensor, shape (..., G)
        α²F on that grid (negative values count as 0).
    mu_star : float
        Coulomb pseudopotential μ*.

    Returns
    -------
    Tensor, shape (...)
        Tc in kelvin; 0 where there is no pairing.

    Examples
    --------
    >>> w = torch.linspace(0.01, 100, 200001, dtype=torch.float64)
    >>> a2f = 0.5 * 20.0 * torch.exp(-0.5 * ((w - 20) / 0.2) ** 2) / (0.2 * 2.5066282746310002)
    >>> round(float(allen_dynes_tc(w, a2f)), 2)      # λ = 1, ω_log = ω₂ = 20 meV
    16.98
    """
    lam, wlog, w2 = spectral_moments(frequencies_meV, a2f)
    denom = lam - mu_star * (1.0 + 0.62 * lam)
    ok = (lam > 0) & (wlog > 0) & (denom > 0)
    one = torch.ones_like(lam)
    lam_s, wlog_s, w2_s = (torch.where(ok, x, one) for x in (lam, wlog, w2))
    denom_s = torch.where(ok, denom, one)
    ratio = w2_s / wlog_s
    lam1 = 2.46 * (1.0 + 3.8 * mu_star)
    lam2 = 1.82 * (1.0 + 6.3 * mu_star) * ratio
    f1 = (1.0 + (lam_s / lam1) ** 1.5) ** (1.0 / 3.0)
    f2 = 1.0 + (ratio - 1.0) * lam_s**2 / (lam_s**2 + lam2**2)
    tc = f1 * f2 * wlog_s / 1.2 * torch.exp(-1.04 * (1.0 + lam_s) / denom_s)
    return torch.where(ok, tc, torch.zeros_like(tc))


def log_tc_loss(tc_pred_K: torch.Tensor, tc_true_K: torch.Tensor,
                weights: torch.Tensor | None = None, scale_K: float = 1.0) -> torch.Tensor:
    """Weighted mean of ``[ln(1 + Tc_pred/s) − ln(1 + Tc_true/s)]²`` (s = ``scale_K``).

    The logarithm keeps the few high-Tc rows from dominating and treats 0 K vs 1 K like
    10 K vs 20 K; ``weights`` are row multiplicities (bootstrap).
    """
    err = (torch.log1p(tc_pred_K / scale_K) - torch.log1p(tc_true_K / scale_K)) ** 2
    if weights is None:
        return err.mean()
    return (weights * err).sum() / weights.sum()


def moment_loss(frequencies_meV: torch.Tensor, pred: torch.Tensor, target: torch.Tensor,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean of ``(λ_pred − λ)² + (ln ω_log,pred − ln ω_log)²`` over rows.

    λ and ω_log (:func:`spectral_moments`) weigh α²F by 1/ω, so the low-frequency bins that a
    per-bin MSE treats like any other set them; ω_log is floored at 1 K inside the logarithm
    (a spectrum without weight has ω_log = 0).
    """
    lam_p, wlog_p, _ = spectral_moments(frequencies_meV, pred)
    lam_t, wlog_t, _ = spectral_moments(frequencies_meV, target)
    err = (lam_p - lam_t) ** 2 + (torch.log(wlog_p.clamp(min=1.0))
                                  - torch.log(wlog_t.clamp(min=1.0))) ** 2
    if weights is None:
        return err.mean()
    return (weights * err).sum() / weights.sum()

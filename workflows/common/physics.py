"""Code-agnostic electron-phonon physics: α²F moments, Tc formulas, stability.

This is the single implementation used by the QE documents, the model
evaluation, screening and the benchmarks.  Frequencies are in meV.

Conventions (``docs/dev/architecture.md``):

- λ = 2∫α²F(ω)/ω dω
- ω_log = exp[(2/λ)∫α²F(ω) ln ω / ω dω]
- ω₂ = [(2/λ)∫α²F(ω) ω dω]^½
- Allen–Dynes Tc with f1·f2 and the McMillan–Allen–Dynes form, μ* =
  :data:`stores.constants.DEFAULT_MU_STAR` by default.

``DEFAULT_MU_STAR`` and ``DEFAULT_STABILITY_THRESHOLD_MEV`` are defined in
:mod:`stores.constants` (their one home) and re-exported here beside the formulas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from stores.constants import DEFAULT_MU_STAR, DEFAULT_STABILITY_THRESHOLD_MEV
from workflows.common.units import MEV_TO_K

DEFAULT_OMEGA_MIN_MEV = 0.05
"""Frequencies at or below this are excluded from the moment integrals (meV)."""
HIT_TC_K = 5.0
"""A screening 'hit' is a computed Tc above this (kelvin)."""


@dataclass(frozen=True)
class Moments:
    """Moments of an Eliashberg function.

    Attributes
    ----------
    lambda_ : float
        Electron-phonon coupling constant λ (dimensionless).
    omega_log_meV, omega_2_meV : float
        Logarithmic and second-moment average frequencies (meV); 0 when λ = 0.
    """

    lambda_: float
    omega_log_meV: float
    omega_2_meV: float

    @property
    def omega_log_K(self) -> float:
        """ω_log in kelvin."""
        return self.omega_log_meV * MEV_TO_K

    @property
    def omega_2_K(self) -> float:
        """ω₂ in kelvin."""
        return self.omega_2_meV * MEV_TO_K

    def as_dict(self) -> dict[str, float]:
        """Plain dictionary with meV and K values."""
        out = asdict(self)
        out["omega_log_K"] = self.omega_log_K
        out["omega_2_K"] = self.omega_2_K
        return out


def _validated(frequencies_meV: ArrayLike, a2f: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(frequencies_meV, dtype=float)
    f = np.asarray(a2f, dtype=float)
    if w.ndim != 1 or f.shape[-1] != w.shape[0]:
        raise ValueError(
            f"α²F has shape {f.shape} but the frequency grid has {w.shape}; "
            "the last axis of α²F must match the grid."
        )
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(f))):
        raise ValueError("α²F or its frequency grid contains NaN/inf; rerun or clean the spectrum.")
    return w, f


def moments(
    frequencies_meV: ArrayLike,
    a2f: ArrayLike,
    omega_min_meV: float = DEFAULT_OMEGA_MIN_MEV,
) -> Moments:
    """λ, ω_log and ω₂ of α²F(ω) by the trapezoid rule.

    Parameters
    ----------
    frequencies_meV : array, shape (n,)
        Frequency grid in meV (ascending).
    a2f : array, shape (n,)
        α²F on that grid; negative values are clipped to 0.
    omega_min_meV : float
        Only ω > omega_min_meV enters the integrals (avoids 1/ω at 0).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(0.01, 100, 200001)
    >>> m = moments(w, einstein_a2f(w, 20.0, 1.0, width_meV=0.2))
    >>> round(m.lambda_, 3), round(m.omega_log_meV, 2)
    (1.0, 20.0)
    """
    w, f = _validated(frequencies_meV, a2f)
    mask = w > omega_min_meV
    w, f = w[mask], np.clip(f[mask], 0.0, None)
    if w.size < 2:
        return Moments(0.0, 0.0, 0.0)
    lam = 2.0 * np.trapezoid(f / w, w)
    if lam <= 0.0:
        return Moments(0.0, 0.0, 0.0)
    wlog = float(np.exp(2.0 / lam * np.trapezoid(f * np.log(w) / w, w)))
    w2 = float(np.sqrt(2.0 / lam * np.trapezoid(f * w, w)))
    return Moments(float(lam), wlog, w2)


def cumulative_lambda(frequencies_meV: ArrayLike, a2f: ArrayLike,
                      omega_min_meV: float = DEFAULT_OMEGA_MIN_MEV) -> np.ndarray:
    """λ(ω) = 2∫_0^ω α²F/ω' dω', same grid as the input (0 below omega_min_meV)."""
    w, f = _validated(frequencies_meV, a2f)
    integrand = np.where(w > omega_min_meV, np.clip(f, 0.0, None) / np.where(w > 0, w, 1.0), 0.0)
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(w)
    return 2.0 * np.concatenate([[0.0], np.cumsum(steps)])


def allen_dynes_tc(lambda_: float, omega_log_K: float, omega_2_K: float,
                   mu_star: float = DEFAULT_MU_STAR, strong_coupling: bool = True) -> float:
    """Allen–Dynes Tc in kelvin.

    Tc = f1 f2 ω_log/1.2 exp[−1.04(1+λ)/(λ − μ*(1+0.62λ))] with
    f1 = [1+(λ/Λ1)^{3/2}]^{1/3}, f2 = 1 + (ω₂/ω_log − 1)λ²/(λ² + Λ2²),
    Λ1 = 2.46(1+3.8μ*), Λ2 = 1.82(1+6.3μ*)(ω₂/ω_log).  With
    ``strong_coupling=False`` f1 = f2 = 1 (the McMillan–Allen–Dynes form).
    Returns 0 when the exponent's denominator is not positive (no pairing).

    >>> round(allen_dynes_tc(1.0, 100.0, 120.0, strong_coupling=False), 3)
    6.964
    """
    if not all(np.isfinite([lambda_, omega_log_K, omega_2_K, mu_star])):
        raise ValueError("Tc needs finite λ, ω_log, ω₂ and μ*.")
    denom = lambda_ - mu_star * (1.0 + 0.62 * lambda_)
    if lambda_ <= 0.0 or omega_log_K <= 0.0 or denom <= 0.0:
        return 0.0
    tc = omega_log_K / 1.2 * np.exp(-1.04 * (1.0 + lambda_) / denom)
    if strong_coupling:
        ratio = omega_2_K / omega_log_K
        lam1 = 2.46 * (1.0 + 3.8 * mu_star)
        lam2 = 1.82 * (1.0 + 6.3 * mu_star) * ratio
        f1 = (1.0 + (lambda_ / lam1) ** 1.5) ** (1.0 / 3.0)
        f2 = 1.0 + (ratio - 1.0) * lambda_**2 / (lambda_**2 + lam2**2)
        tc *= f1 * f2
    return float(tc)


def mcmillan_allen_dynes_tc(lambda_: float, omega_log_K: float,
                            mu_star: float = DEFAULT_MU_STAR) -> float:
    """McMillan formula with Allen–Dynes' ω_log/1.2 prefactor (no f1, f2), kelvin."""
    return allen_dynes_tc(lambda_, omega_log_K, omega_log_K, mu_star, strong_coupling=False)


@dataclass(frozen=True)
class Superconductivity:
    """Moments and Tc of one spectrum (all frequencies in K)."""

    lambda_: float
    omega_log_K: float
    omega_2_K: float
    tc_allen_dynes_K: float
    tc_mcmillan_K: float
    mu_star: float


def superconductivity(frequencies_meV: ArrayLike, a2f: ArrayLike,
                      mu_star: float = DEFAULT_MU_STAR,
                      omega_min_meV: float = DEFAULT_OMEGA_MIN_MEV) -> Superconductivity:
    """Moments and both Tc forms of α²F(ω) (frequencies in meV)."""
    m = moments(frequencies_meV, a2f, omega_min_meV)
    return Superconductivity(
        lambda_=m.lambda_,
        omega_log_K=m.omega_log_K,
        omega_2_K=m.omega_2_K,
        tc_allen_dynes_K=allen_dynes_tc(m.lambda_, m.omega_log_K, m.omega_2_K, mu_star),
        tc_mcmillan_K=mcmillan_allen_dynes_tc(m.lambda_, m.omega_log_K, mu_star),
        mu_star=mu_star,
    )


def einstein_a2f(frequencies_meV: ArrayLike, omega_e_meV: float, lambda_: float,
                 width_meV: float = 0.5) -> np.ndarray:
    """A narrow Gaussian Einstein spectrum with coupling λ at ω_E.

    For a delta function α²F = (λ ω_E / 2) δ(ω − ω_E): λ, ω_log = ω₂ = ω_E.
    """
    w = np.asarray(frequencies_meV, dtype=float)
    g = np.exp(-0.5 * ((w - omega_e_meV) / width_meV) ** 2) / (width_meV * np.sqrt(2 * np.pi))
    return 0.5 * lambda_ * omega_e_meV * g


def lowest_frequency_meV(frequencies_meV: ArrayLike, dos: ArrayLike,
                         rel_tol: float = 1e-8) -> float:
    """Lowest frequency carrying phonon DOS weight above ``rel_tol`` × max(DOS)."""
    w, d = _validated(frequencies_meV, dos)
    if d.ndim > 1:
        d = d.sum(axis=0)
    nonzero = np.abs(d) > rel_tol * max(float(np.abs(d).max()), 1e-300)
    if not nonzero.any():
        raise ValueError("The phonon DOS is zero everywhere; the matdyn run produced no DOS.")
    return float(w[nonzero][0])


def is_dynamically_stable(frequencies_meV: ArrayLike, dos: ArrayLike,
                          threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV) -> bool:
    """True when the phonon DOS has no weight below ``threshold_meV``."""
    return lowest_frequency_meV(frequencies_meV, dos) >= threshold_meV

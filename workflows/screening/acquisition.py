"""Acquisition functions: which candidates deserve a DFPT calculation.

The ensemble gives each candidate a mean Tc μ and a spread σ (standard deviation
over the members, K).  Treating the Tc as normal N(μ, σ²):

===========  ===========================================================
``mean``     μ (pure exploitation)
``ucb``      μ + κσ (upper confidence bound)
``pi``       P(Tc > t) = Φ((μ − t)/σ), t = threshold (5 K: a "hit")
``ei``       E[max(Tc − f*, 0)] = (μ − f*)Φ(z) + σφ(z), z = (μ − f*)/σ,
             f* = best verified Tc so far (the incumbent)
===========  ===========================================================

With σ = 0 the limits are used: PI is 1 above the threshold and 0 below (½ at it),
EI is max(μ − f*, 0).  :func:`rank` orders by score (ties: higher μ, then input order)
and can cap the number of picks per chemical system (diversity).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from workflows.common.physics import HIT_TC_K

DEFAULT_KAPPA = 1.0


def _normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def probability_above(mean: ArrayLike, std: ArrayLike, threshold: float = HIT_TC_K,
                      ) -> np.ndarray:
    """P(X > threshold) for X ~ N(mean, std²), elementwise.

    >>> probability_above([5.0, 7.0], [1.0, 0.0], 5.0).tolist()
    [0.5, 1.0]
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(std, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mu - threshold) / sd
        p = ndtr(z)
    sharp = np.where(mu > threshold, 1.0, np.where(mu < threshold, 0.0, 0.5))
    return np.where(sd > 0, p, sharp)


def expected_improvement(mean: ArrayLike, std: ArrayLike, incumbent: float) -> np.ndarray:
    """E[max(X − incumbent, 0)] for X ~ N(mean, std²), elementwise.

    >>> round(float(expected_improvement([1.0], [1.0], 1.0)[0]), 6)   # σ φ(0)
    0.398942
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(std, dtype=float)
    gain = mu - float(incumbent)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = gain / sd
        ei = gain * ndtr(z) + sd * _normal_pdf(z)
    return np.where(sd > 0, ei, np.maximum(gain, 0.0))


@dataclass(frozen=True)
class AcquisitionParams:
    """What an acquisition function may use besides the mean and σ of Tc.

    Attributes
    ----------
    kappa : float
        UCB exploration weight.
    threshold : float
        PI threshold (K).
    incumbent : float
        EI incumbent f* (K): the best verified Tc (0 K when nothing is verified yet).
    """

    kappa: float = DEFAULT_KAPPA
    threshold: float = HIT_TC_K
    incumbent: float = 0.0


ScoreFunction = Callable[[np.ndarray, np.ndarray, AcquisitionParams], np.ndarray]
"""``score(mean, std, params)`` → one score per candidate (higher = acquire first)."""


@dataclass(frozen=True)
class Acquisition:
    """One acquisition function of the registry."""

    score: ScoreFunction
    description: str


ACQUISITIONS: dict[str, Acquisition] = {
    "mean": Acquisition(lambda mu, sd, p: mu.copy(), "μ (pure exploitation)"),
    "ucb": Acquisition(lambda mu, sd, p: mu + float(p.kappa) * sd, "μ + κσ"),
    "pi": Acquisition(lambda mu, sd, p: probability_above(mu, sd, p.threshold),
                      "P(Tc > threshold)"),
    "ei": Acquisition(lambda mu, sd, p: expected_improvement(mu, sd, p.incumbent),
                      "expected improvement over the best verified Tc"),
}
"""Name → :class:`Acquisition`; ``--acquisition`` offers these names, in this order."""


def acquisition_scores(mean: ArrayLike, std: ArrayLike, kind: str = "mean", *,
                       kappa: float = DEFAULT_KAPPA, threshold: float = HIT_TC_K,
                       incumbent: float | None = None) -> np.ndarray:
    """Score of every candidate (higher = acquire first).

    Parameters
    ----------
    mean, std : array_like, shape (n,)
        Ensemble mean and standard deviation of Tc (K).
    kind : str
        A name of :data:`ACQUISITIONS` (any case).
    kappa : float
        UCB exploration weight.
    threshold : float
        PI threshold (K); default the hit threshold, 5 K.
    incumbent : float, optional
        EI incumbent f* (K): the best verified Tc; None = 0 K (nothing verified yet).

    Raises
    ------
    ValueError
        Unknown kind, shapes that differ, or a negative σ.
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(std, dtype=float)
    if mu.shape != sd.shape:
        raise ValueError(f"mean has shape {mu.shape} but std has {sd.shape}")
    if np.any(sd < 0):
        raise ValueError("standard deviations must be >= 0")
    function = ACQUISITIONS.get(str(kind).lower())
    if function is None:
        raise ValueError(f"unknown acquisition {kind!r}; choose one of {', '.join(ACQUISITIONS)}")
    params = AcquisitionParams(kappa=float(kappa), threshold=float(threshold),
                               incumbent=0.0 if incumbent is None else float(incumbent))
    return np.asarray(function.score(mu, sd, params), dtype=float)


def rank(scores: ArrayLike, *, mean: ArrayLike | None = None,
         groups: Sequence[str] | None = None, max_per_group: int | None = None,
         ) -> list[int]:
    """Indices in acquisition order.

    Parameters
    ----------
    scores : array_like, shape (n,)
    mean : array_like, optional
        Tie-breaker (higher first); then input order.
    groups : sequence of str, optional
        Group of each candidate (chemical system) for the diversity cap.
    max_per_group : int, optional
        At most this many candidates per group are ranked; the others are left out
        (returned list shorter than n).

    >>> rank([1.0, 3.0, 3.0, 2.0], mean=[0, 1, 2, 0])
    [2, 1, 3, 0]
    >>> rank([3.0, 2.0, 1.0], groups=["Al", "Al", "Pb"], max_per_group=1)
    [0, 2]
    """
    s = np.asarray(scores, dtype=float)
    s = np.where(np.isfinite(s), s, -np.inf)
    m = np.zeros_like(s) if mean is None else np.asarray(mean, dtype=float)
    order = sorted(range(s.size), key=lambda i: (-s[i], -m[i], i))
    if max_per_group is None or groups is None:
        return order
    if max_per_group < 1:
        raise ValueError(f"max_per_group must be >= 1, got {max_per_group}")
    if len(groups) != s.size:
        raise ValueError(f"{len(groups)} groups for {s.size} scores")
    count: dict[str, int] = defaultdict(int)
    out = []
    for i in order:
        if count[groups[i]] < max_per_group:
            count[groups[i]] += 1
            out.append(i)
    return out

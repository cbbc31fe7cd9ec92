"""BETE-NET target grid and THE resampling of spectra (α²F, total and site-projected phonon DOS).

The paper's procedure (Gibson et al. 2025): linear interpolation onto a 0.1 meV grid spanning the
input, a Savitzky–Golay filter (101 points, cubic), sampling at the 51 bin centres
``0.25, 2.25, ..., 100.25`` meV, clipping at 0. Spectral weight outside the grid is not dropped
silently: :func:`resample_to_grid` returns it so that callers record it (and warn when it matters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GRID_MEV", "GRID_START_MEV", "GRID_STEP_MEV", "PAPER_GRID", "GridSpectrum",
           "ModelGrid", "model_grid", "resample_to_grid", "savgol_smooth"]

#: First bin centre and spacing of every model grid (meV).
GRID_START_MEV = 0.25
GRID_STEP_MEV = 2.0
#: Bin centres of the BETE-NET target grid (meV), shape (51,): the paper's 0.25 … 100.25 meV.
GRID_MEV = GRID_START_MEV + GRID_STEP_MEV * np.arange(51)


def model_grid(n_bins: int = 51) -> np.ndarray:
    """Bin centres of a model with ``n_bins`` outputs: 0.25, 2.25, … meV (51 = the paper's).

    A longer grid (e.g. 126 bins, to 250.25 meV) covers the phonons of light-element
    compounds (hydrides, carbides) that lie above the paper's 100 meV; the spacing and the
    resampling stay the same, so the first 51 bins of any grid are the paper's.
    """
    if int(n_bins) < 2:
        raise ValueError(f"a model grid needs at least 2 bins, got {n_bins}")
    return GRID_START_MEV + GRID_STEP_MEV * np.arange(int(n_bins))


@dataclass(frozen=True)
class ModelGrid:
    """The grid a model predicts on and how spectra are put on it.

    Attributes
    ----------
    n_bins : int
        Bins from 0.25 meV in steps of 2 meV (51: the paper's 0.25 … 100.25 meV; 126 reaches
        250.25 meV, the top of hydride phonons).
    window : int
        Savitzky–Golay window in points of the 0.1 meV interpolation (101 = 10 meV: the
        paper's). The paper's window alone moves fast-v1 λ by 0.06 and ω_log by 19 K on average
        (soft spectra such as Pb's are flattened); 31 points (3 meV) by 0.01 and 1.5 K.
    """

    n_bins: int = 51
    window: int = 101

    def __post_init__(self) -> None:
        model_grid(self.n_bins)
        if self.window < 5 or self.window % 2 != 1:
            raise ValueError(f"the smoothing window must be an odd number of points >= 5, got "
                             f"{self.window}")

    @property
    def centres(self) -> np.ndarray:
        """Bin centres (meV)."""
        return model_grid(self.n_bins)

    def resample(self, freq_meV, values) -> GridSpectrum:
        """:func:`resample_to_grid` onto this grid with this window."""
        return resample_to_grid(freq_meV, values, grid_meV=self.centres, window=self.window)

    def describe(self) -> dict:
        """What a manifest records about the grid."""
        return {"bins": self.n_bins, "start_meV": GRID_START_MEV, "step_meV": GRID_STEP_MEV,
                "top_meV": float(self.centres[-1]), "savgol_window_points": self.window,
                "interpolation_step_meV": 0.1}


#: The paper's grid and resampling (51 bins, 10 meV window).
PAPER_GRID = ModelGrid()


@dataclass(frozen=True)
class GridSpectrum:
    """A spectrum resampled onto :data:`GRID_MEV`.

    Attributes
    ----------
    values : numpy.ndarray
        ``(..., 51)`` resampled, smoothed, non-negative values on :data:`GRID_MEV`.
    weight_above_grid : numpy.ndarray
        ``(...)`` ∫ values dω over ω > ``GRID_MEV[-1]`` of the input (units of values × meV);
        this weight is outside the model's target.
    weight_below_grid : numpy.ndarray
        ``(...)`` ∫ values dω over ω < ``GRID_MEV[0]`` (includes negative, i.e. imaginary, modes).
    weight_total : numpy.ndarray
        ``(...)`` ∫ values dω over the whole input.
    """

    values: np.ndarray
    weight_above_grid: np.ndarray
    weight_below_grid: np.ndarray
    weight_total: np.ndarray

    @property
    def fraction_above_grid(self) -> np.ndarray:
        """``(...)`` weight above the grid over the total weight (0 where the total is 0)."""
        total = np.asarray(self.weight_total, dtype=np.float64)
        above = np.asarray(self.weight_above_grid, dtype=np.float64)
        return np.divide(above, total, out=np.zeros_like(total), where=total != 0)


def savgol_smooth(y: np.ndarray, window: int = 101, order: int = 3) -> np.ndarray:
    """Savitzky–Golay smoothing along the last axis (numpy; same as scipy's ``mode="interp"``).

    Parameters
    ----------
    y : numpy.ndarray
        ``(..., m)`` samples on a uniform grid, ``m >= window``.
    window : int
        Odd window length (points).
    order : int
        Polynomial order, ``< window``.

    Returns
    -------
    numpy.ndarray
        ``(..., m)`` smoothed samples; the first and last ``window // 2`` points come from a
        polynomial fitted to the first / last ``window`` points, as scipy does.
    """
    if window % 2 != 1 or window <= order:
        raise ValueError(
            f"The Savitzky–Golay window must be odd and > order, got {window}, {order}."
        )
    y = np.asarray(y, dtype=np.float64)
    m = y.shape[-1]
    if m < window:
        raise ValueError(f"Savitzky–Golay needs at least {window} points, got {m}.")
    half = window // 2
    x = np.arange(window, dtype=np.float64) - half
    vander = x[:, None] ** np.arange(order + 1)
    proj = vander @ np.linalg.pinv(vander)  # (window, window): least-squares polynomial projector
    out = np.empty_like(y)
    windows = np.lib.stride_tricks.sliding_window_view(y, window, axis=-1)
    out[..., half : m - half] = windows @ proj[half]
    out[..., :half] = y[..., :window] @ proj[:half].T
    out[..., m - half :] = y[..., m - window :] @ proj[half + 1 :].T
    return out


def _trapz_where(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Trapezoid over the intervals whose both ends satisfy ``mask``; y ``(..., m)``."""
    seg = 0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(x)
    keep = mask[1:] & mask[:-1]
    return np.sum(seg * keep, axis=-1)


def resample_to_grid(
    freq_meV,
    values,
    *,
    fine_step_meV: float = 0.1,
    window: int = 101,
    order: int = 3,
    grid_meV: np.ndarray | None = None,
) -> GridSpectrum:
    """Resample a spectrum (or a stack of them) onto the BETE-NET grid, the paper's way.

    Steps: linear interpolation onto a ``fine_step_meV`` grid spanning ``freq_meV``;
    Savitzky–Golay filter (``window`` points, ``order``; the window shrinks to the largest odd
    length that fits when the input spans fewer points); linear sampling at the grid centres
    (0 outside the input range); clip at 0.

    Parameters
    ----------
    freq_meV : array_like
        ``(m,)`` increasing frequencies (meV); may start below 0 (imaginary modes).
    values : array_like
        ``(m,)`` or ``(k, m)`` spectra on ``freq_meV`` — α²F, a total phonon DOS, or ``k``
        site-projected DOS at once.
    fine_step_meV, window, order : float, int, int
        The paper's 0.1 meV, 101 points, cubic.
    grid_meV : numpy.ndarray, optional
        Target centres; :data:`GRID_MEV` by default.

    Returns
    -------
    GridSpectrum
        ``values`` of shape ``values.shape[:-1] + (51,)`` and the weights outside the grid.

    Examples
    --------
    >>> w = np.linspace(0, 60, 601)
    >>> res = resample_to_grid(w, np.exp(-((w - 30) / 5) ** 2))
    >>> res.values.shape, float(res.weight_above_grid)
    ((51,), 0.0)
    """
    grid = GRID_MEV if grid_meV is None else np.asarray(grid_meV, dtype=np.float64)
    freq = np.asarray(freq_meV, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if freq.ndim != 1 or freq.size < 2:
        raise ValueError(
            f"freq_meV must be a 1-d array of at least 2 points, got shape {freq.shape}."
        )
    if vals.shape[-1:] != freq.shape:
        raise ValueError(
            f"values must end with the frequency axis: freq has {freq.size} points, "
            f"values have shape {vals.shape}."
        )
    if not (np.all(np.isfinite(freq)) and np.all(np.isfinite(vals))):
        raise ValueError("The spectrum contains non-finite values (nan or inf).")
    if np.any(np.diff(freq) <= 0):
        raise ValueError("freq_meV must be strictly increasing.")

    n_fine = int(np.floor((freq[-1] - freq[0]) / fine_step_meV + 1e-9)) + 1
    fine = freq[0] + fine_step_meV * np.arange(n_fine)
    # linear interpolation of every row at once
    idx = np.clip(np.searchsorted(freq, fine, side="right") - 1, 0, freq.size - 2)
    t = (fine - freq[idx]) / (freq[idx + 1] - freq[idx])
    y = vals[..., idx] * (1.0 - t) + vals[..., idx + 1] * t

    w = min(window, n_fine if n_fine % 2 else n_fine - 1)
    if w > order + 1:
        y_s = savgol_smooth(y, w, order)
    else:
        y_s = y

    gidx = np.clip(np.searchsorted(fine, grid, side="right") - 1, 0, max(n_fine - 2, 0))
    if n_fine >= 2:
        gt = (grid - fine[gidx]) / (fine[gidx + 1] - fine[gidx])
        out = y_s[..., gidx] * (1.0 - gt) + y_s[..., gidx + 1] * gt
    else:
        out = np.zeros(vals.shape[:-1] + grid.shape)
    inside = (grid >= fine[0]) & (grid <= fine[-1])
    out = np.where(inside, out, 0.0)
    out = np.clip(out, 0.0, None)

    # weights outside the grid, on the input's own samples (cut points included exactly)
    lo, hi = grid[0], grid[-1]
    x_all = np.union1d(freq, [lo, hi])
    y_all = _interp_rows(x_all, freq, vals)
    total = _trapz_where(x_all, y_all, np.ones_like(x_all, dtype=bool))
    above = _trapz_where(x_all, y_all, x_all >= hi)
    below = _trapz_where(x_all, y_all, x_all <= lo)
    return GridSpectrum(
        values=out, weight_above_grid=above, weight_below_grid=below, weight_total=total
    )


def _interp_rows(x_new: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Linear interpolation of every row of ``y (..., m)`` at ``x_new``; 0 outside ``x``."""
    idx = np.clip(np.searchsorted(x, x_new, side="right") - 1, 0, x.size - 2)
    t = (x_new - x[idx]) / (x[idx + 1] - x[idx])
    out = y[..., idx] * (1.0 - t) + y[..., idx + 1] * t
    return np.where((x_new >= x[0]) & (x_new <= x[-1]), out, 0.0)

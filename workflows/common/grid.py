"""Spectra onto the model grid, with a warning when weight falls off it.

:func:`grid_values` wraps :meth:`betenet_model.targets.ModelGrid.resample` (the one resampling)
for the data code (:mod:`workflows.ml.data`) and the MLIP phonon documents
(:mod:`workflows.mlip.flows`), which both put spectra and site DOS on
:data:`betenet_model.targets.GRID_MEV`.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike

from betenet_model.targets import PAPER_GRID, ModelGrid

logger = logging.getLogger(__name__)

ABOVE_GRID_WARN_FRACTION = 0.01
"""Warn when more than this fraction of a spectrum's weight lies above the model grid."""


def grid_values(frequencies_meV: ArrayLike, values: ArrayLike, what: str = "spectrum",
                ident: str = "", grid: ModelGrid = PAPER_GRID) -> np.ndarray:
    """Resample onto a model grid (default the paper's); warn when weight lies above it."""
    res = grid.resample(frequencies_meV, values)
    frac = np.atleast_1d(res.fraction_above_grid)
    if np.any(frac > ABOVE_GRID_WARN_FRACTION):
        logger.warning("%s %s: %.1f%% of the weight lies above the model grid and is not "
                       "represented", ident, what, 100 * float(frac.max()))
    return np.asarray(res.values, dtype=float)

"""The analysis defaults every package uses and every document records: one home each.

``workflows`` (physics, flows, documents), ``stores`` (schemas, data sets, export) and
``launchers`` import them from here.  ``betenet_model`` may not import ``stores``: its own
``DEFAULT_MU_STAR`` (:mod:`betenet_model.train_config`) is tied to this one by
``tests/betenet_model/test_tc.py``.  Values pinned to data computed in the past (the fast-v1
identity in :mod:`stores.protocol`) are facts about that data and stay where they are.
"""

from __future__ import annotations

DEFAULT_MU_STAR = 0.10
"""Coulomb pseudopotential μ* of every Tc unless chosen otherwise."""
DEFAULT_STABILITY_THRESHOLD_MEV = -0.5
"""Phonon DOS weight below this frequency (meV) marks a structure dynamically unstable."""
DEFAULT_REFERENCE_SIGMA_RY = 0.02
"""Broadening (Ry) of a task document's headline λ, ω_log and Tc (the fast-v1 label)."""
DEFAULT_VARIANT = "cso"
"""Model variant of a manifest that names none: ``betenet_model.variants.DEFAULT_VARIANT``,
which ``stores`` may not import (``tests/test_constants.py`` ties the two)."""

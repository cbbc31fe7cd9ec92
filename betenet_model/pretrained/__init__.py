"""Trained ensembles shipped with the package (state_dict files + JSON manifests).

- ``fast-v1-jarvis-l3i5`` (the default): 10 CSO members whose node inputs are element
  descriptors plus SevenNet-l3i5's last-layer atom features, the anchored head on the 126-bin
  (to 250 meV) grid, a direct ln(1 + Tc) head and an out-of-bag σ calibration, trained on all
  stable fast-v1 α²F records plus the training side of jarvis-tc (Tc only); its ``README.md``
  is the model card.
- ``fast-v1-jarvis-cso``: the previous default (20 members, element descriptors, 51-bin grid,
  35 fast-v1 records; no calibration: its σ is the raw member spread).
- ``fast-v1-cso``: the earlier 5-member demonstration (paper one-hot inputs, 16 records).

Each folder's ``ensemble.json`` (``metadata.command``) says how it was made.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

AVAILABLE = ("fast-v1-jarvis-l3i5", "fast-v1-jarvis-cso", "fast-v1-cso")
DEFAULT = AVAILABLE[0]
"""The ensemble ``bete predict`` (and every command without ``--model``) uses."""


def pretrained_dir(name: str = DEFAULT) -> Path:
    """Folder of a shipped ensemble.

    Raises
    ------
    ValueError
        Unknown name.
    """
    if name not in AVAILABLE:
        raise ValueError(f"no shipped ensemble {name!r}; available: {', '.join(AVAILABLE)}")
    return Path(str(resources.files(__name__) / name))

"""Trained ensembles shipped with the package (state_dict files + JSON manifests).

- ``fast-v1-jarvis-cso`` (the default): 10 CSO members with element-descriptor inputs, the
  anchored output head and the λ/ω_log loss, trained on the stable fast-v1 α²F records plus
  the training side of jarvis-tc (Tc only); its ``README.md`` is the model card.
- ``fast-v1-cso``: the earlier 5-member demonstration (paper one-hot inputs, 16 records).

Each folder's ``ensemble.json`` (``metadata.command``) says how it was made.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

AVAILABLE = ("fast-v1-jarvis-cso", "fast-v1-cso")
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

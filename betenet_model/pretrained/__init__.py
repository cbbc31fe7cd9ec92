"""Trained ensembles shipped with the package (state_dict files + JSON manifests).

``fast-v1-cso``: a small CSO ensemble trained on the fast-v1 α²F records; see its
``ensemble.json`` (``metadata.command``) for how it was made.  It is a demonstration model
(17 training structures), not the paper's 100-member ensemble.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

AVAILABLE = ("fast-v1-cso",)


def pretrained_dir(name: str = "fast-v1-cso") -> Path:
    """Folder of a shipped ensemble.

    Raises
    ------
    ValueError
        Unknown name.
    """
    if name not in AVAILABLE:
        raise ValueError(f"no shipped ensemble {name!r}; available: {', '.join(AVAILABLE)}")
    return Path(str(resources.files(__name__) / name))

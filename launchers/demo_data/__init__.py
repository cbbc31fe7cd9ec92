"""Candidate structures of ``bete demo``: small cells whose elements Debian's LDA files cover.

``Al``, ``Pb``, ``Cu`` (fcc, 1 atom), ``Mg`` (hcp, 2 atoms) and ``Si`` (diamond, 2 atoms, an
insulator: its DFPT run stops after the scf with an ``insulator`` document).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def candidates_dir() -> Path:
    """Folder of the demo candidate CIFs."""
    return Path(str(resources.files(__name__)))

"""Element descriptors: a chemistry-aware node input, so an element unseen in training is not blank.

The table ``data/element_descriptors.json`` holds, for Z = 1..118, pymatgen's element data
(group, row, block, Pauling electronegativity, atomic and covalent radii, valence s/p/d/f
electron counts, mass and 1/√mass, Mendeleev number, first ionisation energy, electron
affinity, molar volume, melting point; written by ``scripts/make_element_descriptors.py``).
Each column is standardised to zero mean and unit variance over the elements that have a value;
a missing value becomes 0 (the column mean). The table ships with the package so a trained
checkpoint does not change when pymatgen revises a number.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "DESCRIPTOR_TABLE",
    "descriptor_names",
    "descriptor_table",
    "descriptor_table_hash",
    "element_descriptors",
]

#: Path of the shipped descriptor table.
DESCRIPTOR_TABLE = Path(__file__).with_name("data") / "element_descriptors.json"


@lru_cache(maxsize=1)
def _load() -> tuple[tuple[str, ...], np.ndarray, str]:
    text = DESCRIPTOR_TABLE.read_text()
    data = json.loads(text)
    raw = np.array([[np.nan if v is None else float(v) for v in row] for row in data["values"]])
    mean = np.nanmean(raw, axis=0)
    std = np.nanstd(raw, axis=0)
    std[std == 0] = 1.0
    scaled = np.nan_to_num((raw - mean) / std, nan=0.0)
    table = np.concatenate([np.full((1, raw.shape[1]), np.nan), scaled])  # index = Z
    table.setflags(write=False)
    return tuple(data["columns"]), table, hashlib.sha256(text.encode()).hexdigest()


def descriptor_names() -> tuple[str, ...]:
    """Names of the descriptor columns, in order."""
    return _load()[0]


def descriptor_table() -> np.ndarray:
    """``(119, D)`` standardised descriptors indexed by Z (row 0 is nan), read-only."""
    return _load()[1]


def descriptor_table_hash() -> str:
    """sha256 of the shipped table file (recorded with models that use it)."""
    return _load()[2]


def element_descriptors(atomic_numbers) -> np.ndarray:
    """Standardised descriptors of ``atomic_numbers`` ``(n,)`` (1..118) -> ``(n, D)`` float64.

    Examples
    --------
    >>> d = element_descriptors([41, 73, 8])       # Nb, Ta, O
    >>> bool(np.linalg.norm(d[0] - d[1]) < np.linalg.norm(d[0] - d[2]))
    True
    """
    z = np.asarray(atomic_numbers, dtype=np.int64).reshape(-1)
    return np.array(descriptor_table()[z])

"""The model's view of a training or prediction row: arrays only, targets on the 51-bin grid.

The flows turn their structures and spectra into :class:`CrystalSample` rows
(resampling with :func:`betenet_model.targets.resample_to_grid`); the model
code never sees pymatgen objects or Ry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class CrystalSample:
    """One crystal as plain arrays.

    Attributes
    ----------
    id : str
        Identifier carried through to predictions and reports.
    lattice : ndarray, shape (3, 3)
        Lattice vectors as rows (Å).
    positions : ndarray, shape (n, 3)
        Cartesian positions (Å).
    atomic_numbers : ndarray, shape (n,)
        Z of every site.
    target : ndarray, shape (n_bins,), optional
        α²F on the model grid (training rows only).
    site_dos : ndarray, shape (n, n_bins), optional
        Site-projected phonon DOS on the model grid (CPD/FPD variants).
    tc_K : float, optional
        A Tc label (K) for a row without a spectrum: training then supervises the
        Allen–Dynes Tc of the predicted α²F (:mod:`betenet_model.tc`).
    atom_features : ndarray, shape (n, D), optional
        Per-atom features of a universal potential (foundation node-feature modes), raw.
    phonon_dos : ndarray, shape (n_bins,), optional
        Phonon DOS on the model grid, per atom (∫ dω = 3): the ``F(ω)`` of the ``dos`` head.
    """

    id: str
    lattice: np.ndarray = field(repr=False)
    positions: np.ndarray = field(repr=False)
    atomic_numbers: np.ndarray
    target: np.ndarray | None = field(default=None, repr=False)
    site_dos: np.ndarray | None = field(default=None, repr=False)
    tc_K: float | None = None
    atom_features: np.ndarray | None = field(default=None, repr=False)
    phonon_dos: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.lattice = np.asarray(self.lattice, dtype=np.float64)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.atomic_numbers = np.asarray(self.atomic_numbers, dtype=np.int64)
        if self.target is not None:
            self.target = np.asarray(self.target, dtype=np.float64)
        if self.site_dos is not None:
            self.site_dos = np.asarray(self.site_dos, dtype=np.float64)
            if self.site_dos.shape[0] != self.atomic_numbers.shape[0]:
                raise ValueError(f"sample {self.id}: site DOS has {self.site_dos.shape[0]} rows "
                                 f"but the structure has {self.atomic_numbers.shape[0]} sites")
        if self.atom_features is not None:
            self.atom_features = np.asarray(self.atom_features, dtype=np.float64)
            if self.atom_features.shape[0] != self.atomic_numbers.shape[0]:
                raise ValueError(f"sample {self.id}: {self.atom_features.shape[0]} rows of atom "
                                 f"features for {self.atomic_numbers.shape[0]} sites")
        if self.phonon_dos is not None:
            self.phonon_dos = np.asarray(self.phonon_dos, dtype=np.float64)


def targets_array(samples: Sequence[CrystalSample]) -> np.ndarray:
    """Targets stacked as (n, n_bins); every sample must have one."""
    missing = [s.id for s in samples if s.target is None]
    if missing:
        raise ValueError(f"samples {missing[:5]} have no target spectrum; cannot train on them")
    return np.stack([s.target for s in samples])  # type: ignore[misc]


def supervision_arrays(samples: Sequence[CrystalSample]) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum targets ``(n, n_bins)`` and Tc labels ``(n,)``, NaN where a row has none.

    A row with a spectrum is supervised by it (its ``tc_K``, if any, is not used); a row
    without one by its ``tc_K``.

    Raises
    ------
    ValueError
        A row has neither, or no row has a spectrum (the mean training spectrum is the
        baseline every evaluation compares with).
    """
    bare = [s.id for s in samples if s.target is None and s.tc_K is None]
    if bare:
        raise ValueError(f"samples {bare[:5]} have neither a target spectrum nor a Tc label")
    with_spectrum = [s for s in samples if s.target is not None]
    if not with_spectrum:
        raise ValueError("no training row has an α²F spectrum; add spectrum rows (e.g. "
                         "fast-v1) to the Tc-only rows")
    n_bins = np.asarray(with_spectrum[0].target).shape[-1]
    targets = np.full((len(samples), n_bins), np.nan)
    tc = np.full(len(samples), np.nan)
    for i, s in enumerate(samples):
        if s.target is not None:
            targets[i] = s.target
        else:
            tc[i] = float(s.tc_K)  # type: ignore[arg-type]
    return targets, tc


def elements_seen(samples: Sequence[CrystalSample]) -> list[int]:
    """Sorted atomic numbers present in ``samples``."""
    out: set[int] = set()
    for s in samples:
        out.update(int(z) for z in s.atomic_numbers)
    return sorted(out)


def dataset_hash(samples: Sequence[CrystalSample]) -> str:
    """sha256 of ids, cells, species, targets and site DOS (rounded), in the given order.

    Examples
    --------
    >>> s = CrystalSample("a", [[3, 0, 0], [0, 3, 0], [0, 0, 3]], [[0, 0, 0]], [13])
    >>> dataset_hash([s]) == dataset_hash([s]) and len(dataset_hash([s]))
    64
    """
    h = hashlib.sha256()
    for s in samples:
        h.update(s.id.encode())
        h.update(s.atomic_numbers.astype("<i8").tobytes())
        for arr in (s.lattice, s.positions, s.target, s.site_dos):
            if arr is None:
                h.update(b"-")
            else:
                h.update(np.round(np.asarray(arr, dtype=np.float64), 8).astype("<f8").tobytes())
        if s.tc_K is not None and s.target is None:     # only Tc-only rows: old hashes stay
            h.update(f"tc{float(s.tc_K):.8g}".encode())
        for name in ("atom_features", "phonon_dos"):    # only when present: old hashes stay
            arr = getattr(s, name)
            if arr is not None:
                h.update(name.encode())
                h.update(np.round(np.asarray(arr, dtype=np.float64), 6).astype("<f8").tobytes())
    return h.hexdigest()

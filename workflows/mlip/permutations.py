"""Atom permutations of a supercell's space-group operations, composed instead of matched.

phonopy's :class:`~phonopy.structure.symmetry.Symmetry` matches atoms for every operation of
the supercell: n_rotations × n_lattice_translations position matchings (up to 48 × 64 = 3072
for a cubic two-atom cell in a 4×4×4 supercell), in Python around a small compiled kernel.
Over all 802 bete-net supercells that matching cost 98 CPU s, composed 18 s (~2 % of a
full ``bete phonons`` run; cProfile had put all of phonopy's symmetry search at ~6 %).
The operations
are (R, t0 + τ): one per rotation R times the pure translations τ, so each permutation is the
permutation of τ applied after that of (R, t0): perm[(R, t0 + τ)] = perm[τ][perm[(R, t0)]].
:func:`composed_sg_permutations` matches only the pure translations and one operation per
rotation (n_rotations + n_translations matchings) and composes the rest; an operation whose
translation difference is not one of the pure translations is matched directly.  Results
are identical to phonopy's (tested on bete-net supercells).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np


def composed_sg_permutations(positions: np.ndarray, rotations: np.ndarray,
                             translations: np.ndarray, lattice: np.ndarray, symprec: float,
                             types: Any, lang: Literal["C", "Rust"] = "Rust") -> np.ndarray:
    """Same result and signature as phonopy's ``compute_all_sg_permutations``."""
    from phonopy.structure.cells import compute_permutation_for_rotation

    def match(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
        moved = np.dot(positions, rotation.T) + translation
        return compute_permutation_for_rotation(positions, moved, lattice, symprec, types,
                                                lang=lang)

    identity = np.eye(3, dtype=rotations.dtype)
    pure = [i for i, r in enumerate(rotations) if np.array_equal(r, identity)]
    pure_perms = {i: match(rotations[i], translations[i]) for i in pure}
    pure_shifts = np.array([translations[i] for i in pure])
    first_of: dict[bytes, int] = {}
    out = np.empty((len(rotations), len(positions)), dtype="int64")
    for n, (rotation, translation) in enumerate(zip(rotations, translations, strict=True)):
        if n in pure_perms:
            out[n] = pure_perms[n]
            continue
        first = first_of.setdefault(rotation.tobytes(), n)
        if first == n:
            out[n] = match(rotation, translation)
            continue
        shift = translation - translations[first] - pure_shifts
        distance = np.linalg.norm((shift - np.rint(shift)) @ lattice.T, axis=1)
        k = int(np.argmin(distance))
        out[n] = (pure_perms[pure[k]][out[first]] if distance[k] < symprec
                  else match(rotation, translation))
    return out


@contextlib.contextmanager
def composed_permutations() -> Iterator[None]:
    """Within the block, phonopy's Symmetry composes permutations (see the module doc)."""
    import phonopy.structure.symmetry as symmetry

    original = symmetry.compute_all_sg_permutations
    symmetry.compute_all_sg_permutations = composed_sg_permutations
    try:
        yield
    finally:
        symmetry.compute_all_sg_permutations = original

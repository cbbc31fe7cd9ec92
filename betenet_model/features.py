"""Node inputs of BETE-NET: one-hot × mass features, one-hot attributes, optional site phonon DOS.

Variants
--------
``CSO``
    structure only. features = one-hot(Z, 118) × atomic mass (amu); attributes = one-hot(Z, 118).
``CPD`` / ``FPD``
    the site-projected phonon DOS on the 51-bin target grid (coarse 2×2×2 q-grid run for CPD,
    full run for FPD; resampled with :func:`betenet_model.resample_to_grid`) is concatenated to
    the FEATURES: features = [one-hot × mass | site DOS] (169); attributes = [one-hot | 0] (169).
    Both go through the ONE shared ``Linear(169 -> 64) + ReLU`` embedding, so the attribute
    embedding stays a function of the species alone (the DOS columns of the shared weight only
    act on features) — as in the CSO model, where the same Linear embeds both.
    Each site's DOS is used as given (per-site normalisation is the data importer's choice; the
    bete-net records integrate to ≈ 3 states per site over frequency).

Node-feature modes (``node_features``)
--------------------------------------
``"onehot_mass"`` (the paper's, default)
    as above: the species enters only through its one-hot column, so an element absent from
    training keeps its untrained (random) embedding column.
``"descriptors"``
    features = attributes = the standardised element descriptors of
    :func:`betenet_model.elements.element_descriptors` (D = 21: group, row, block,
    electronegativity, radii, valence electrons, mass, ...) in place of the one-hot blocks;
    CPD/FPD append the site DOS to the features and zeros to the attributes as above. Chemically
    similar elements get nearby inputs, so an unseen element is embedded next to its relatives.
A foundation mode (``"sevennet_l3i5"`` ...; :data:`FOUNDATION_FEATURES`)
    features = [element descriptors | per-atom features of that universal potential's last
    interaction layer (``atom_features``, width 128, computed by
    :mod:`workflows.mlip.features`, standardised by the caller)]; attributes = [element
    descriptors | zeros], so the attribute products stay per species. The per-atom block
    describes each atom's environment as the potential learned it from ~10⁶ DFT structures.

Masses are the IUPAC 2016 standard atomic weights (most stable isotope mass for elements
without one), the table ASE uses — the one the reference implementation used.
"""

from __future__ import annotations

import numpy as np

from .elements import descriptor_names, element_descriptors
from .variants import DEFAULT_VARIANT, VARIANTS, get_variant

__all__ = [
    "ATOMIC_MASSES",
    "NUM_SPECIES",
    "DOS_BINS",
    "FOUNDATION_FEATURES",
    "NODE_FEATURES",
    "VARIANTS",
    "atomic_masses",
    "check_node_features",
    "foundation_potential",
    "input_dim",
    "node_inputs",
]

#: Number of elements in the one-hot encoding (Z = 1..118).
NUM_SPECIES = 118
#: Length of the site-projected DOS block (the 51-bin target grid).
DOS_BINS = 51
#: Foundation-feature modes: name → width of the per-atom block (the last interaction layer of
#: the universal potential of that name, with ``-`` for ``_``: ``sevennet_l3i5`` → sevennet-l3i5).
FOUNDATION_FEATURES = {"sevennet_0": 128, "sevennet_l3i5": 128, "sevennet_mf_0": 128}
#: Node-feature modes: the paper's one-hot × mass, standardised element descriptors, or
#: descriptors + the per-atom features of a universal potential.
NODE_FEATURES = ("onehot_mass", "descriptors", *FOUNDATION_FEATURES)

# IUPAC 2016 standard atomic weights (amu) for Z = 1..118 (as in ase.data.atomic_masses_iupac2016).
_MASSES_Z1_TO_Z118 = (
    1.008,
    4.002602,
    6.94,
    9.0121831,
    10.81,
    12.011,
    14.007,
    15.999,
    18.998403163,
    20.1797,
    22.98976928,
    24.305,
    26.9815385,
    28.085,
    30.973761998,
    32.06,
    35.45,
    39.948,
    39.0983,
    40.078,
    44.955908,
    47.867,
    50.9415,
    51.9961,
    54.938044,
    55.845,
    58.933194,
    58.6934,
    63.546,
    65.38,
    69.723,
    72.63,
    74.921595,
    78.971,
    79.904,
    83.798,
    85.4678,
    87.62,
    88.90584,
    91.224,
    92.90637,
    95.95,
    97.90721,
    101.07,
    102.9055,
    106.42,
    107.8682,
    112.414,
    114.818,
    118.71,
    121.76,
    127.6,
    126.90447,
    131.293,
    132.90545196,
    137.327,
    138.90547,
    140.116,
    140.90766,
    144.242,
    144.91276,
    150.36,
    151.964,
    157.25,
    158.92535,
    162.5,
    164.93033,
    167.259,
    168.93422,
    173.054,
    174.9668,
    178.49,
    180.94788,
    183.84,
    186.207,
    190.23,
    192.217,
    195.084,
    196.966569,
    200.592,
    204.38,
    207.2,
    208.9804,
    208.98243,
    209.98715,
    222.01758,
    223.01974,
    226.02541,
    227.02775,
    232.0377,
    231.03588,
    238.02891,
    237.04817,
    244.06421,
    243.06138,
    247.07035,
    247.07031,
    251.07959,
    252.083,
    257.09511,
    258.09843,
    259.101,
    262.11,
    267.122,
    268.126,
    271.134,
    270.133,
    269.1338,
    278.156,
    281.165,
    281.166,
    285.177,
    286.182,
    289.19,
    289.194,
    293.204,
    293.208,
    294.214,
)

#: ``(119,)`` float64 atomic masses (amu) indexed by Z; index 0 is nan.
ATOMIC_MASSES = np.concatenate([[np.nan], np.asarray(_MASSES_Z1_TO_Z118, dtype=np.float64)])
ATOMIC_MASSES.setflags(write=False)


def _check_z(atomic_numbers) -> np.ndarray:
    z = np.asarray(atomic_numbers)
    if z.size == 0:
        raise ValueError("The structure is empty: no atomic numbers given.")
    if z.dtype.kind not in "iu":
        raise ValueError(f"Atomic numbers must be integers, got dtype {z.dtype}.")
    z = z.astype(np.int64).reshape(-1)
    bad = z[(z < 1) | (z > NUM_SPECIES)]
    if bad.size:
        raise ValueError(
            f"Unknown element: atomic number(s) {sorted(set(bad.tolist()))} outside 1..118."
        )
    return z


def atomic_masses(atomic_numbers) -> np.ndarray:
    """Standard atomic weights (amu) of ``atomic_numbers`` ``(n,)`` -> ``(n,)`` float64."""
    return ATOMIC_MASSES[_check_z(atomic_numbers)]


def input_dim(variant: str = DEFAULT_VARIANT, node_features: str = "onehot_mass") -> int:
    """Width of the node features/attributes.

    118 (CSO) or 169 (CPD, FPD) for ``"onehot_mass"``; D or D + 51 for ``"descriptors"``;
    D + 128 (+ 51) for a foundation mode.
    """
    mode = check_node_features(node_features)
    species = NUM_SPECIES if mode == "onehot_mass" else len(descriptor_names())
    species += FOUNDATION_FEATURES.get(mode, 0)
    return species + DOS_BINS if get_variant(variant).takes_site_dos else species


def check_node_features(node_features: str) -> str:
    """The canonical node-feature mode name, or ValueError naming the choices."""
    mode = str(node_features).lower().replace("-", "_")
    if mode not in NODE_FEATURES:
        raise ValueError(f"Unknown node-feature mode {node_features!r}; choose one of "
                         f"{', '.join(NODE_FEATURES)}.")
    return mode


def foundation_potential(node_features: str) -> str | None:
    """The universal potential a foundation mode takes its atom features from.

    Its registry name (e.g. ``sevennet-l3i5``), or None for the one-hot and descriptor modes.
    """
    mode = check_node_features(node_features)
    return mode.replace("_", "-") if mode in FOUNDATION_FEATURES else None


def node_inputs(
    atomic_numbers, site_dos=None, variant: str = DEFAULT_VARIANT,
    node_features: str = "onehot_mass", atom_features=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Node features and attributes of one structure.

    Parameters
    ----------
    atomic_numbers : array_like
        ``(n,)`` integers 1..118.
    site_dos : array_like, optional
        ``(n, 51)`` site-projected phonon DOS on :data:`betenet_model.GRID_MEV`; required for
        CPD/FPD, must be omitted for CSO.
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS` (any case).
    node_features : str
        Species block: one-hot × mass / one-hot (the paper), element descriptors for both, or
        a foundation mode (descriptors, then ``atom_features`` on the features only).
    atom_features : array_like, optional
        ``(n, 128)`` per-atom features of the mode's potential (foundation modes only; already
        standardised).

    Returns
    -------
    features, attributes : numpy.ndarray
        ``(n, input_dim(variant, node_features))`` each (float64).

    Examples
    --------
    >>> f, a = node_inputs([1, 8])
    >>> f.shape, float(f[1, 7]), float(a[1, 7])
    ((2, 118), 15.999, 1.0)
    """
    v = get_variant(variant)
    mode = check_node_features(node_features)
    z = _check_z(atomic_numbers)
    n = z.size
    width = FOUNDATION_FEATURES.get(mode)
    if width is not None:
        if atom_features is None:
            raise ValueError(f"The {mode} node features need the per-atom features of "
                             f"{foundation_potential(mode)}, shape ({n}, {width}).")
        extra = np.asarray(atom_features, dtype=np.float64)
        if extra.shape != (n, width) or not np.all(np.isfinite(extra)):
            raise ValueError(f"atom_features must be finite with shape ({n}, {width}), got "
                             f"{extra.shape}.")
        species = element_descriptors(z)
        feats = np.concatenate([species, extra], axis=1)
        onehot = np.concatenate([species, np.zeros_like(extra)], axis=1)
    elif atom_features is not None:
        raise ValueError(f"The {mode} node features take no atom_features.")
    elif mode == "descriptors":
        onehot = element_descriptors(z)
        feats = onehot.copy()
    else:
        onehot = np.zeros((n, NUM_SPECIES))
        onehot[np.arange(n), z - 1] = 1.0
        feats = onehot * ATOMIC_MASSES[z][:, None]
    if not v.takes_site_dos:
        if site_dos is not None:
            raise ValueError(f"The {v.name} variant takes no site DOS; use a variant with a site "
                             "DOS input for DOS inputs.")
        return feats, onehot
    if site_dos is None:
        raise ValueError(f"The {v.name} variant needs the site-projected phonon DOS, shape "
                         f"({n}, 51).")
    dos = np.asarray(site_dos, dtype=np.float64)
    if dos.shape != (n, DOS_BINS):
        raise ValueError(
            f"site_dos must have shape ({n}, {DOS_BINS}) (sites × grid bins), got {dos.shape}."
        )
    if not np.all(np.isfinite(dos)):
        raise ValueError("site_dos contains non-finite values (nan or inf).")
    return np.concatenate([feats, dos], axis=1), np.concatenate(
        [onehot, np.zeros_like(dos)], axis=1
    )

"""Periodic crystal graphs: all neighbours within a cutoff, across periodic images, + self-edges.

Conventions follow ``ase.neighborlist.neighbor_list("ijS", atoms, cutoff, self_interaction=True)``,
which is what the BETE-NET reference uses: an edge ``src -> dst`` carries the vector
``positions[dst] - positions[src] + shift @ lattice`` (Å), pairs are kept when that distance is
strictly below the cutoff, and each atom has one self-edge (``src == dst``, zero shift, zero vector)
so that an atom with no neighbour inside the cutoff still receives a message. Periodic images of an
atom itself (``src == dst`` with a non-zero shift) are ordinary edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CrystalGraph", "build_graph", "check_graph_arrays", "DEFAULT_CUTOFF"]

#: Radial cutoff of BETE-NET in Å.
DEFAULT_CUTOFF = 4.0

# candidate pairs evaluated at once; bounds memory for large cells (n_atoms**2 * n_shifts)
_CHUNK = 2_000_000


@dataclass(frozen=True)
class CrystalGraph:
    """Neighbour graph of one periodic crystal (numpy arrays, Å).

    Attributes
    ----------
    atomic_numbers : numpy.ndarray
        ``(n,)`` int64, Z of every site.
    positions : numpy.ndarray
        ``(n, 3)`` float64 cartesian positions (Å), as given.
    lattice : numpy.ndarray
        ``(3, 3)`` float64 lattice vectors as rows (Å).
    edge_src, edge_dst : numpy.ndarray
        ``(E,)`` int64 source and destination site of each edge; messages flow ``src -> dst``.
    edge_shift : numpy.ndarray
        ``(E, 3)`` int64 lattice translation of the destination image.
    edge_vec : numpy.ndarray
        ``(E, 3)`` float64 ``positions[dst] - positions[src] + edge_shift @ lattice`` (Å).
    cutoff : float
        Radial cutoff (Å).
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    lattice: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_shift: np.ndarray
    edge_vec: np.ndarray
    cutoff: float

    @property
    def num_nodes(self) -> int:
        """Number of sites ``n``."""
        return int(self.atomic_numbers.shape[0])

    @property
    def num_edges(self) -> int:
        """Number of edges ``E`` (self-edges included)."""
        return int(self.edge_src.shape[0])

    @property
    def edge_length(self) -> np.ndarray:
        """``(E,)`` edge lengths (Å); 0 for self-edges."""
        return np.linalg.norm(self.edge_vec, axis=1)


def check_graph_arrays(
    lattice, positions, atomic_numbers
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check and convert one structure's arrays; raise ``ValueError`` with a sentence otherwise.

    Parameters
    ----------
    lattice : array_like
        ``(3, 3)`` lattice vectors as rows (Å).
    positions : array_like
        ``(n, 3)`` cartesian positions (Å), ``n >= 1``.
    atomic_numbers : array_like
        ``(n,)`` integers in 1..118.

    Returns
    -------
    tuple of numpy.ndarray
        ``lattice`` (3, 3) float64, ``positions`` (n, 3) float64, ``atomic_numbers`` (n,) int64.
    """
    lat = np.asarray(lattice, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64)
    z_raw = np.asarray(atomic_numbers)
    if lat.shape != (3, 3):
        raise ValueError(
            f"The lattice must be a (3, 3) array of row vectors in Å, got shape {lat.shape}."
        )
    if pos.size == 0 or z_raw.size == 0:
        raise ValueError("The structure is empty: at least one site is needed to build a graph.")
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(
            f"Positions must be an (n, 3) array of cartesian Å, got shape {pos.shape}."
        )
    if z_raw.shape != (pos.shape[0],):
        raise ValueError(
            f"There are {pos.shape[0]} positions but atomic numbers of shape {z_raw.shape}; "
            "give one atomic number per site."
        )
    if not np.all(np.isfinite(lat)):
        raise ValueError("The lattice contains non-finite values (nan or inf).")
    if not np.all(np.isfinite(pos)):
        bad = np.unique(np.nonzero(~np.isfinite(pos))[0]).tolist()
        raise ValueError(f"Positions of sites {bad} are not finite (nan or inf).")
    if abs(np.linalg.det(lat)) < 1e-6:
        raise ValueError("The lattice vectors are linearly dependent (cell volume ~ 0 Å^3).")
    if z_raw.dtype.kind == "f":
        if not np.all(np.isfinite(z_raw)) or np.any(z_raw != np.round(z_raw)):
            raise ValueError(f"Atomic numbers must be integers, got {z_raw.tolist()}.")
    elif z_raw.dtype.kind not in "iu":
        raise ValueError(f"Atomic numbers must be integers, got dtype {z_raw.dtype}.")
    z = z_raw.astype(np.int64)
    unknown = z[(z < 1) | (z > 118)]
    if unknown.size:
        raise ValueError(
            f"Unknown element: atomic number(s) {sorted(set(unknown.tolist()))} outside 1..118."
        )
    return lat, pos, z


def build_graph(
    lattice,
    positions,
    atomic_numbers,
    cutoff: float = DEFAULT_CUTOFF,
    self_edges: bool = True,
) -> CrystalGraph:
    """Build the periodic neighbour graph of a crystal (vectorised, no per-edge Python loop).

    Parameters
    ----------
    lattice : array_like
        ``(3, 3)`` lattice vectors as rows (Å); the cell is periodic in all three directions.
    positions : array_like
        ``(n, 3)`` cartesian positions (Å); need not be wrapped into the cell.
    atomic_numbers : array_like
        ``(n,)`` atomic numbers in 1..118.
    cutoff : float
        Keep pairs with distance strictly below ``cutoff`` (Å).
    self_edges : bool
        Add one zero-vector edge ``i -> i`` per site (the reference's ``self_interaction=True``).

    Returns
    -------
    CrystalGraph
        Edges sorted by ``(src, dst, shift)``.

    Raises
    ------
    ValueError
        Empty structure, non-finite coordinates, unknown element, bad shapes, singular cell.

    Examples
    --------
    >>> import numpy as np
    >>> g = build_graph(np.eye(3) * 3.0, [[0.0, 0.0, 0.0]], [29])
    >>> g.num_edges  # self-edge + 6 neighbours at 3 Å + 12 at 4.24 Å (> 4 Å, excluded)
    7
    """
    lat, pos, z = check_graph_arrays(lattice, positions, atomic_numbers)
    cutoff = float(cutoff)
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"The cutoff must be a positive number of Å, got {cutoff}.")
    n = pos.shape[0]

    # wrap into the cell; remember the integer offsets so vectors refer to the given positions
    frac = pos @ np.linalg.inv(lat)
    offset = np.floor(frac)
    frac_w = frac - offset
    pos_w = frac_w @ lat

    # image range per direction: plane spacing d_k = 1 / |b_k|; +1 because wrapped
    # fractional differences lie in (-1, 1)
    recip = np.linalg.inv(lat).T
    reach = np.ceil(cutoff * np.linalg.norm(recip, axis=1)).astype(np.int64) + 1
    axes = [np.arange(-r, r + 1) for r in reach]
    shifts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    shift_cart = shifts.astype(np.float64) @ lat

    diff = pos_w[None, :, :] - pos_w[:, None, :]  # (n, n, 3): dst - src
    srcs, dsts, shs = [], [], []
    chunk = max(1, _CHUNK // (n * n))
    cut2 = cutoff * cutoff
    for start in range(0, len(shifts), chunk):
        sc = shift_cart[start : start + chunk]
        vec = diff[None, :, :, :] + sc[:, None, None, :]  # (k, n, n, 3)
        d2 = np.einsum("kijx,kijx->kij", vec, vec)
        k, i, j = np.nonzero(d2 < cut2)
        srcs.append(i)
        dsts.append(j)
        shs.append(shifts[start + k])
    src = np.concatenate(srcs)
    dst = np.concatenate(dsts)
    shift_w = np.concatenate(shs)

    # convert the wrapped-frame shift to the frame of the given positions
    shift = shift_w + offset[src].astype(np.int64) - offset[dst].astype(np.int64)
    is_self = (src == dst) & np.all(shift == 0, axis=1)
    # the zero-distance pair i -> i is always found above (0 < cutoff): exactly one per site
    if not self_edges:
        keep = ~is_self
        src, dst, shift = src[keep], dst[keep], shift[keep]

    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], dst, src))
    src, dst, shift = src[order], dst[order], shift[order]
    vec = pos[dst] - pos[src] + shift.astype(np.float64) @ lat
    if self_edges:
        vec[(src == dst) & np.all(shift == 0, axis=1)] = 0.0
    return CrystalGraph(
        atomic_numbers=z,
        positions=pos,
        lattice=lat,
        edge_src=src.astype(np.int64),
        edge_dst=dst.astype(np.int64),
        edge_shift=shift.astype(np.int64),
        edge_vec=vec,
        cutoff=cutoff,
    )

"""Phonons from q2r.x force constants through phonopy.

phonopy reads the q2r.x file (:class:`phonopy.interface.qe.PH_Q2R`), so the
projected phonon DOS, band structures and the dynamical-stability check come
from a maintained library instead of hand-written matdyn post-processing.
Frequencies are returned in meV (phonopy's THz converted once, here).

Examples
--------
>>> from workflows.qe.phonopy_tools import load_q2r_phonopy, phonon_dos  # doctest: +SKIP
>>> phonon = load_q2r_phonopy("al.fc", structure)  # doctest: +SKIP
>>> dos = phonon_dos(phonon, mesh=(20, 20, 20))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from phonopy import Phonopy
from phonopy.interface.qe import PH_Q2R
from phonopy.structure.atoms import PhonopyAtoms
from pymatgen.core import Structure
from pymatgen.symmetry.bandstructure import HighSymmKpath

from workflows.common.physics import DEFAULT_STABILITY_THRESHOLD_MEV
from workflows.common.units import BOHR_TO_ANGSTROM, THZ_TO_MEV


def structure_to_phonopy_atoms(structure: Structure) -> PhonopyAtoms:
    """A pymatgen structure as phonopy atoms in QE's units (bohr) with pymatgen masses.

    Parameters
    ----------
    structure : pymatgen.core.Structure
        The cell QE computed (same site order as the pw.x input).

    Returns
    -------
    PhonopyAtoms
    """
    return PhonopyAtoms(
        symbols=[site.specie.symbol for site in structure],
        cell=structure.lattice.matrix / BOHR_TO_ANGSTROM,
        scaled_positions=structure.frac_coords,
        masses=[float(site.specie.atomic_mass) for site in structure],
    )


def load_q2r_phonopy(fc_file: str | os.PathLike, structure: Structure,
                     masses: Sequence[float] | None = None, symmetrize: bool = True) -> Phonopy:
    """A phonopy object holding q2r.x's real-space force constants.

    Parameters
    ----------
    fc_file : path
        q2r.x's ``flfrc`` file (no Born charges: metals, or remove them first).
    structure : pymatgen.core.Structure
        The primitive cell of the pw.x/ph.x run, sites in the same order.
    masses : sequence of float, optional
        Atomic masses (amu) per site; default pymatgen's (the protocol's ``amass``).
    symmetrize : bool
        Impose the acoustic sum rule and index symmetry on the force constants
        (phonopy's ``symmetrize_force_constants``; matdyn's ``asr`` plays this role).

    Returns
    -------
    phonopy.Phonopy
        With ``force_constants`` set (units Ry/bohr², calculator "qe").
    """
    cell = structure_to_phonopy_atoms(structure)
    if masses is not None:
        if len(masses) != len(structure):
            raise ValueError(f"got {len(masses)} masses for {len(structure)} sites; give one "
                             "mass per site")
        cell.masses = list(masses)
    q2r = PH_Q2R(os.fspath(fc_file))
    q2r.run(cell, is_full_fc=True)
    if q2r.borns is not None:
        warnings.warn(f"{fc_file} holds Born effective charges; phonopy will use force "
                      "constants with QE's dipole part removed (see PH_Q2R docs)", stacklevel=2)
    assert q2r.dimension is not None  # PH_Q2R.run sets it from the file
    phonon = Phonopy(cell, supercell_matrix=np.diag(q2r.dimension), calculator="qe")
    phonon.force_constants = q2r.fc
    if symmetrize:
        phonon.symmetrize_force_constants()
    return phonon


def _mesh3(mesh: Sequence[int]) -> tuple[int, int, int]:
    """The q mesh as three ints (ValueError unless it has three entries)."""
    n1, n2, n3 = (int(m) for m in mesh)
    return n1, n2, n3


@dataclass
class PhonopyDos:
    """Phonon DOS on a mesh, meV.

    Attributes
    ----------
    frequencies_meV : numpy.ndarray, shape (n,)
    total : numpy.ndarray, shape (n,)
        Total DOS, states/meV/cell (integrates to 3·nat).
    projected : numpy.ndarray, shape (nat, n)
        Site-projected DOS, states/meV (sum over sites = total).
    mesh : tuple of int
    """

    frequencies_meV: np.ndarray
    total: np.ndarray
    projected: np.ndarray
    mesh: tuple[int, int, int]

    def highest_frequency_meV(self, tol: float = 1e-3) -> float:
        """Highest frequency where the DOS exceeds ``tol`` × its maximum."""
        return float(self.frequencies_meV[self.total > tol * self.total.max()][-1])


def phonon_dos(phonon: Phonopy, mesh: Sequence[int] = (20, 20, 20),
               freq_pitch_meV: float = 0.25, sigma_meV: float | None = None) -> PhonopyDos:
    """Total and site-projected phonon DOS.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        From :func:`load_q2r_phonopy`.
    mesh : sequence of 3 int
        q mesh (Γ-centred).
    freq_pitch_meV : float
        Spacing of the frequency grid, meV.
    sigma_meV : float, optional
        Gaussian smearing, meV; default: tetrahedron method.

    Returns
    -------
    PhonopyDos
    """
    phonon.run_mesh(list(mesh), with_eigenvectors=True, is_mesh_symmetry=False,
                    is_gamma_center=True)
    phonon.run_projected_dos(freq_pitch=freq_pitch_meV / THZ_TO_MEV,
                             sigma=None if sigma_meV is None else sigma_meV / THZ_TO_MEV,
                             use_tetrahedron_method=sigma_meV is None)
    pdos = phonon.get_projected_dos_dict()
    freqs = np.asarray(pdos["frequency_points"]) * THZ_TO_MEV
    projected = np.asarray(pdos["projected_dos"]) / THZ_TO_MEV
    return PhonopyDos(freqs, projected.sum(axis=0), projected, _mesh3(mesh))


@dataclass
class StabilityCheck:
    """Lowest phonon frequency on a dense mesh.

    Attributes
    ----------
    min_frequency_meV : float
        Lowest frequency on the mesh, meV (negative = imaginary).
    dynamically_stable : bool
        ``min_frequency_meV >= threshold_meV``.
    threshold_meV : float
    mesh : tuple of int
    """

    min_frequency_meV: float
    dynamically_stable: bool
    threshold_meV: float
    mesh: tuple[int, int, int]


def stability_check(phonon: Phonopy, mesh: Sequence[int] = (20, 20, 20),
                    threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV
                    ) -> StabilityCheck:
    """Dynamical stability from the lowest frequency on a dense Γ-centred mesh.

    Parameters
    ----------
    phonon : phonopy.Phonopy
    mesh : sequence of 3 int
    threshold_meV : float
        Frequencies below this mark the structure unstable (project default −0.5 meV).

    Returns
    -------
    StabilityCheck
    """
    phonon.run_mesh(list(mesh), is_gamma_center=True)
    # run_mesh builds a Mesh (not an IterMesh), whose dict has the frequencies
    frequencies = phonon.get_mesh_dict()["frequencies"]  # type: ignore[typeddict-item]
    wmin = float(np.min(frequencies)) * THZ_TO_MEV
    return StabilityCheck(wmin, wmin >= threshold_meV, threshold_meV, _mesh3(mesh))


@dataclass
class PhononBands:
    """Phonon band structure along a high-symmetry path.

    Attributes
    ----------
    qpoints : list of numpy.ndarray, each shape (n_i, 3)
        Segments in reduced coordinates of the computed cell's reciprocal lattice.
    distances : list of numpy.ndarray, each shape (n_i,)
        Path length (phonopy's units, 2π/bohr-free reciprocal length).
    frequencies_meV : list of numpy.ndarray, each shape (n_i, n_branches)
    labels : list of str
        Labels of segment end points (phonopy convention).
    path_connections : list of bool
    """

    qpoints: list[np.ndarray]
    distances: list[np.ndarray]
    frequencies_meV: list[np.ndarray]
    labels: list[str]
    path_connections: list[bool]


def high_symmetry_path(structure: Structure, npoints: int = 51
                       ) -> tuple[list[np.ndarray], list[str], list[bool]]:
    """Setyawan–Curtarolo q path in the reciprocal basis of the structure itself.

    Falls back to the setting-independent Latimer–Munro path when the cell is
    not a standard primitive cell.

    Parameters
    ----------
    structure : pymatgen.core.Structure
    npoints : int
        Points per segment, end points included.

    Returns
    -------
    segments, labels, connections
        As phonopy's ``run_band_structure`` takes them.
    """
    own = structure.lattice.reciprocal_lattice
    kpath = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        candidate = HighSymmKpath(structure, path_type="setyawan_curtarolo")
        transform = np.linalg.solve(own.matrix.T, candidate.prim_rec.matrix.T).T
        if np.allclose(transform, np.rint(transform), atol=1e-5):
            kpath = candidate
        else:
            kpath = HighSymmKpath(structure, path_type="latimer_munro")
    rec = kpath.prim_rec.matrix if kpath.prim_rec is not None else own.matrix
    points = {name: np.asarray(frac) @ rec @ np.linalg.inv(own.matrix)
              for name, frac in kpath.kpath["kpoints"].items()}
    segments, labels, connections = [], [], []
    for branch in kpath.kpath["path"]:
        for start, end in zip(branch[:-1], branch[1:], strict=True):
            segments.append(np.linspace(points[start], points[end], npoints))
            connections.append(True)
        connections[-1] = False
        labels.extend(branch)
    labels = ["$\\Gamma$" if lab in ("\\Gamma", "Γ") else lab for lab in labels]
    return segments, labels, connections


def band_structure(phonon: Phonopy, structure: Structure, npoints: int = 51) -> PhononBands:
    """Phonon bands along :func:`high_symmetry_path`.

    Parameters
    ----------
    phonon : phonopy.Phonopy
    structure : pymatgen.core.Structure
        The same cell as ``phonon``'s unit cell.
    npoints : int
        Points per segment.

    Returns
    -------
    PhononBands
    """
    segments, labels, connections = high_symmetry_path(structure, npoints)
    phonon.run_band_structure(segments, path_connections=connections, labels=labels)
    bands = phonon.get_band_structure_dict()
    frequencies = bands["frequencies"]
    assert frequencies is not None  # run_band_structure always computes them
    return PhononBands(
        [np.asarray(q) for q in bands["qpoints"]],
        [np.asarray(d) for d in bands["distances"]],
        [np.asarray(f) * THZ_TO_MEV for f in frequencies],
        labels, connections,
    )

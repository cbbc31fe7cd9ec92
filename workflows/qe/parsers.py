"""Parse pw.x and ph.x outputs into plain dataclasses with units in the names.

QE's Rydberg and cm⁻¹ are converted once, here, with the constants of
:mod:`workflows.common.units`.  The matdyn files (``a2F.dos*``, ``lambda``,
phonon DOS) are read by :mod:`workflows.qe.matdyn_parsers`; the metal/insulator
check after the scf is in :mod:`workflows.qe.bands`.  Both are re-exported
here so callers import one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workflows.common.units import CM1_TO_MEV, RY_TO_EV
from workflows.qe.bands import BandGap, band_gap, band_gap_from_pw_output, band_gap_from_xml
from workflows.qe.matdyn_parsers import (
    A2FDos,
    LambdaFile,
    LambdaRow,
    PhononDos,
    parse_a2f_dos,
    parse_a2f_dos_files,
    parse_lambda_file,
    parse_phonon_dos,
)

__all__ = [
    "A2FDos", "BandGap", "ElphSigma", "LambdaFile", "LambdaRow", "PhOutput", "PhononDos",
    "PhQPoint", "PwOutput", "band_gap", "band_gap_from_pw_output", "band_gap_from_xml",
    "parse_a2f_dos", "parse_a2f_dos_files", "parse_lambda_file", "parse_ph_output",
    "parse_phonon_dos", "parse_pw_output", "parse_wall_time_s",
]

_FLOAT = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eEdD][-+]?\d+)?"
_VERSION = re.compile(r"Program (\w+) v\.(\S+) starts")
_WALL = re.compile(r"^\s*(PWSCF|PHONON|Q2R|MATDYN)\s*:.*?CPU\s+(.*?)\s+WALL", re.MULTILINE)


def _read(path_or_text: str | Path) -> str:
    """Text of a file, or the argument itself when it already is output text."""
    if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
        return Path(path_or_text).read_text(errors="replace")
    return str(path_or_text)


def parse_wall_time_s(text: str) -> float | None:
    """QE's total wall time ("1h 2m", "2m23.45s", "7.49s") in seconds, None if absent."""
    matches = _WALL.findall(text)
    if not matches:
        return None
    stamp = matches[-1][1].replace(" ", "")
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d*)?)([hms])", stamp):
        total += float(value) * {"h": 3600.0, "m": 60.0, "s": 1.0}[unit]
    return total


def _version(text: str) -> str | None:
    match = _VERSION.search(text)
    return match.group(2) if match else None


@dataclass
class PwOutput:
    """Results of one pw.x run.

    Attributes
    ----------
    total_energy_eV : float or None
        Final total energy ("!    total energy"), eV.
    fermi_energy_eV : float or None
        Fermi energy (smearing runs), eV.
    highest_occupied_eV, lowest_unoccupied_eV : float or None
        Band edges printed for fixed occupations, eV.
    pressure_kbar : float or None
        Pressure from the stress tensor (``tstress``), kbar.
    converged : bool
        "convergence has been achieved" seen and "convergence NOT achieved" not.
    n_scf_iterations : int or None
        Iterations of the last scf cycle.
    n_electrons : float or None
    n_bands : int or None
        Number of Kohn-Sham states.
    n_kpoints : int or None
        Irreducible k points.
    alat_bohr : float or None
        Lattice parameter alat in bohr.
    qe_version : str or None
        e.g. "6.7MaX".
    wall_time_s : float or None
        Total wall time reported by pw.x, seconds.
    job_done : bool
        "JOB DONE" printed.
    """

    total_energy_eV: float | None = None
    fermi_energy_eV: float | None = None
    highest_occupied_eV: float | None = None
    lowest_unoccupied_eV: float | None = None
    pressure_kbar: float | None = None
    converged: bool = False
    n_scf_iterations: int | None = None
    n_electrons: float | None = None
    n_bands: int | None = None
    n_kpoints: int | None = None
    alat_bohr: float | None = None
    qe_version: str | None = None
    wall_time_s: float | None = None
    job_done: bool = False


def _last_float(pattern: str, text: str) -> float | None:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def parse_pw_output(path_or_text: str | Path) -> PwOutput:
    """Parse a pw.x output file (or its text).

    Parameters
    ----------
    path_or_text : str or Path
        Output file, or the output text itself.

    Returns
    -------
    PwOutput
        Energies in eV, pressure in kbar; absent quantities are None.
    """
    text = _read(path_or_text)
    out = PwOutput()
    energy_ry = _last_float(rf"!\s+total energy\s+=\s+({_FLOAT})\s+Ry", text)
    out.total_energy_eV = None if energy_ry is None else energy_ry * RY_TO_EV
    out.fermi_energy_eV = _last_float(rf"the Fermi energy is\s+({_FLOAT})\s+ev", text)
    edges = re.findall(rf"highest occupied, lowest unoccupied level \(ev\):\s+({_FLOAT})\s+"
                       rf"({_FLOAT})", text)
    if edges:
        out.highest_occupied_eV, out.lowest_unoccupied_eV = map(float, edges[-1])
    else:
        out.highest_occupied_eV = _last_float(rf"highest occupied level \(ev\):\s+({_FLOAT})",
                                              text)
    out.pressure_kbar = _last_float(rf"\(kbar\)\s+P=\s*({_FLOAT})", text)
    iterations = re.findall(r"convergence has been achieved in\s+(\d+)\s+iterations", text)
    out.n_scf_iterations = int(iterations[-1]) if iterations else None
    out.converged = bool(iterations) and "convergence NOT achieved" not in text
    out.n_electrons = _last_float(rf"number of electrons\s+=\s+({_FLOAT})", text)
    nbnd = _last_float(r"number of Kohn-Sham states\s*=\s*(\d+)", text)
    out.n_bands = None if nbnd is None else int(nbnd)
    nks = _last_float(r"number of k points\s*=\s*(\d+)", text)
    out.n_kpoints = None if nks is None else int(nks)
    out.alat_bohr = _last_float(rf"lattice parameter \(alat\)\s+=\s+({_FLOAT})\s+a\.u\.", text)
    out.qe_version = _version(text)
    out.wall_time_s = parse_wall_time_s(text)
    out.job_done = "JOB DONE" in text
    return out


@dataclass
class ElphSigma:
    """Electron-phonon data of one q point at one Gaussian broadening (ph.x output).

    Attributes
    ----------
    sigma_Ry : float
        Broadening, Ry.
    dos_ef_states_per_spin_Ry : float
        N(E_F), states/spin/Ry/cell.
    fermi_energy_eV : float
        E_F at this broadening, eV.
    lambdas : numpy.ndarray, shape (n_modes,)
        Mode couplings λ_qν (NaN where QE printed asterisks).
    gammas_GHz : numpy.ndarray, shape (n_modes,)
        Linewidths γ_qν, GHz.
    """

    sigma_Ry: float
    dos_ef_states_per_spin_Ry: float
    fermi_energy_eV: float
    lambdas: np.ndarray
    gammas_GHz: np.ndarray


@dataclass
class PhQPoint:
    """One q point of a ph.x run.

    Attributes
    ----------
    q_cart_2pi_alat : numpy.ndarray, shape (3,)
        q in Cartesian units of 2π/alat.
    q_crystal : numpy.ndarray, shape (3,)
        q in crystal (reciprocal-lattice) coordinates.
    frequencies_meV : numpy.ndarray, shape (n_modes,)
        Phonon frequencies, meV (negative = imaginary).
    elph : list of ElphSigma
        Per-broadening couplings (empty without electron_phonon).
    star_size : int or None
        Points of the q grid this q stands for: the star ph.x prints, doubled when ph.x adds
        the −q list (no inversion or time-reversal partner in the star). None if not printed.
    """

    q_cart_2pi_alat: np.ndarray
    q_crystal: np.ndarray
    frequencies_meV: np.ndarray
    elph: list[ElphSigma] = field(default_factory=list)
    star_size: int | None = None


@dataclass
class PhOutput:
    """Results of one ph.x run.

    Attributes
    ----------
    q_grid : tuple of int or None
        Monkhorst-Pack q grid of an ``ldisp`` run.
    n_irreducible_q : int
        Irreducible q points of the run (listed, or computed when not ``ldisp``).
    irreducible_q_2pi_alat : numpy.ndarray, shape (n_irreducible_q, 3)
        The list printed by ph.x (2π/alat), empty for single-q runs.
    q_points : list of PhQPoint
        The q points diagonalised in this output, in order.
    lattice_alat : numpy.ndarray, shape (3, 3) or None
        Direct lattice vectors (rows) in units of alat.
    alat_bohr : float or None
    qe_version, wall_time_s, job_done
        As for :class:`PwOutput`.
    """

    q_grid: tuple[int, int, int] | None = None
    n_irreducible_q: int = 0
    irreducible_q_2pi_alat: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    q_points: list[PhQPoint] = field(default_factory=list)
    lattice_alat: np.ndarray | None = None
    alat_bohr: float | None = None
    qe_version: str | None = None
    wall_time_s: float | None = None
    job_done: bool = False


def _numbers(s: str) -> list[float]:
    return [float(x) for x in re.findall(_FLOAT, s)]


def _lattice(text: str) -> np.ndarray | None:
    rows = []
    for i in (1, 2, 3):
        found = re.search(rf"a\({i}\) = \((.*?)\)", text)
        if found is None:
            return None
        rows.append(_numbers(found.group(1)))
    return np.array(rows)


def _elph_sections(block: str) -> list[ElphSigma]:
    parts = re.split(r"Gaussian Broadening:", block)[1:]
    result = []
    for part in parts:
        head = re.match(rf"\s*({_FLOAT})", part)
        if head is None:
            raise ValueError(f"ph.x el-ph block without a broadening value: {part[:80]!r}")
        sigma = float(head.group(1))
        dos = re.search(rf"DOS =\s*({_FLOAT}).*?Ef=\s*({_FLOAT})", part)
        lambdas, gammas = [], []
        for lam, gam in re.findall(r"lambda\(\s*\d+\)=\s*(\S+)\s+gamma=\s*(\S+)\s+GHz", part):
            lambdas.append(float(lam) if "*" not in lam else np.nan)
            gammas.append(float(gam) if "*" not in gam else np.nan)
        result.append(ElphSigma(sigma, float(dos.group(1)) if dos else np.nan,
                                float(dos.group(2)) if dos else np.nan,
                                np.array(lambdas), np.array(gammas)))
    return result


def _star_size(text_before_q: str) -> int | None:
    """Star of the q point diagonalised next: the last star ph.x printed before it."""
    stars = list(re.finditer(r"Number of q in the star =\s*(\d+)", text_before_q))
    if not stars:
        return None
    minus_q = "In addition there is the -q list" in text_before_q[stars[-1].end():]
    return int(stars[-1].group(1)) * (2 if minus_q else 1)


def parse_ph_output(path_or_text: str | Path) -> PhOutput:
    """Parse a ph.x output file (or its text).

    Parameters
    ----------
    path_or_text : str or Path
        Output file, or the output text itself.

    Returns
    -------
    PhOutput
        q points (2π/alat and crystal), frequencies in meV, per-q per-σ λ and γ.
    """
    text = _read(path_or_text)
    out = PhOutput(qe_version=_version(text), wall_time_s=parse_wall_time_s(text),
                   job_done="JOB DONE" in text, lattice_alat=_lattice(text))
    out.alat_bohr = _last_float(rf"lattice parameter \(alat\)\s+=\s+({_FLOAT})\s+a\.u\.", text)
    grid = re.search(r"Dynamical matrices for \(\s*(\d+),\s*(\d+),\s*(\d+)\)\s+uniform grid"
                     r" of q-points\s*\n\s*\(\s*(\d+)\s*q-points\):\s*\n.*?\n((?:\s*\d+(?:\s+"
                     + _FLOAT + r"){3}\s*\n)+)", text)
    if grid:
        out.q_grid = (int(grid.group(1)), int(grid.group(2)), int(grid.group(3)))
        out.n_irreducible_q = int(grid.group(4))
        rows = [_numbers(ln)[1:4] for ln in grid.group(5).strip().splitlines()]
        out.irreducible_q_2pi_alat = np.array(rows)
    pieces = text.split("Diagonalizing the dynamical matrix")
    for before, block in zip(pieces[:-1], pieces[1:], strict=True):
        block = block.split("Calculation of q")[0]
        q_line = re.search(r"q = \((.*?)\)", block)
        if q_line is None:
            raise ValueError("ph.x output: a dynamical matrix without its q = (...) line")
        q: np.ndarray = np.array(_numbers(q_line.group(1)))
        freqs = [float(x) for x in re.findall(rf"freq \(\s*\d+\)\s*=\s*{_FLOAT}\s*\[THz\]\s*=\s*"
                                              rf"({_FLOAT})\s*\[cm-1\]", block)]
        q_crys = q @ out.lattice_alat.T if out.lattice_alat is not None else q * np.nan
        out.q_points.append(PhQPoint(q, q_crys, np.array(freqs) * CM1_TO_MEV,
                                     _elph_sections(block), _star_size(before)))
    if not grid:
        out.n_irreducible_q = len(out.q_points)
    return out

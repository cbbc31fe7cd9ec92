"""Parse matdyn.x files: ``a2F.dos*``, ``lambda`` and the phonon DOS.

Frequencies are converted once, here: Ry → meV (``a2F.dos*``) and
cm⁻¹ → meV (phonon DOS).  Non-finite values in ``a2F.dos*`` or the DOS raise a
:class:`ValueError` naming the file and the protocol's remedy (rerun matdyn
with ``asr='simple'``, then ``asr='no'``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflows.common.units import CM1_TO_MEV, RY_TO_MEV

_FORTRAN_EXP = re.compile(r"(?<=\d)([-+]\d{3})(?=\s|$)")
"""Fortran drops the 'E' of three-digit exponents (1.0-100); put it back."""

NAN_ADVICE = ("rerun matdyn.x with asr='simple', then asr='no' if that still gives NaN "
              "(protocol fast-v1, step 5)")


def _table(path: Path) -> np.ndarray:
    """Numeric rows of a whitespace table, skipping '#' comments and non-numeric lines."""
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.lower().startswith("lambda"):
            continue
        try:
            rows.append([float(x) for x in _FORTRAN_EXP.sub(r"E\1", stripped).split()])
        except ValueError:
            continue
    if not rows:
        raise ValueError(f"{path} holds no numeric rows; is it a complete matdyn.x output?")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError(f"{path} has rows of different lengths; the file is truncated or "
                         "corrupt, rerun matdyn.x")
    return np.array(rows)


def _check_finite(path: Path, *arrays: np.ndarray) -> None:
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError(f"{path} contains NaN/inf values; {NAN_ADVICE}")


@dataclass
class A2FDos:
    """One ``a2F.dos<i>`` file: the Eliashberg function at one broadening.

    Attributes
    ----------
    path : Path
    index : int or None
        The ``<i>`` of ``a2F.dos<i>`` (1 = smallest broadening).
    frequencies_meV : numpy.ndarray, shape (n,)
    a2f : numpy.ndarray, shape (n,)
        Total α²F(ω) (dimensionless).
    a2f_modes : numpy.ndarray, shape (n_modes, n)
        Per-mode α²F.
    lambda_qe : float or None
        QE's λ from the trailing ``lambda = ...`` line (not used for moments).
    """

    path: Path
    index: int | None
    frequencies_meV: np.ndarray
    a2f: np.ndarray
    a2f_modes: np.ndarray
    lambda_qe: float | None = None


def parse_a2f_dos(path: str | Path) -> A2FDos:
    """Read one ``a2F.dos<i>`` file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    A2FDos
        Frequencies in meV, total and per-mode α²F.

    Raises
    ------
    ValueError
        Any NaN/inf in the file (with the protocol's remedy), or no data.
    """
    path = Path(path)
    text = path.read_text(errors="replace")
    data = _table(path)
    _check_finite(path, data)
    lam = re.search(r"lambda\s*=\s*(\S+)", text)
    try:
        lambda_qe = float(lam.group(1)) if lam else None
    except ValueError:
        lambda_qe = float("nan")
    if lam is not None and lambda_qe is not None and not np.isfinite(lambda_qe):
        raise ValueError(f"{path} reports lambda = {lam.group(1)}; {NAN_ADVICE}")
    index = re.search(r"a2F\.dos(\d+)$", path.name)
    return A2FDos(path, int(index.group(1)) if index else None, data[:, 0] * RY_TO_MEV,
                  data[:, 1], data[:, 2:].T.copy(), lambda_qe)


def parse_a2f_dos_files(directory: str | Path) -> list[A2FDos]:
    """All ``a2F.dos<i>`` files of a matdyn run, ordered by ``<i>`` (broadening).

    Parameters
    ----------
    directory : str or Path
        Where matdyn.x ran.

    Returns
    -------
    list of A2FDos
    """
    directory = Path(directory)
    paths = [p for p in directory.glob("a2F.dos*") if re.fullmatch(r"a2F\.dos\d+", p.name)]
    if not paths:
        raise FileNotFoundError(f"no a2F.dos<i> files in {directory}; run matdyn.x with "
                                "la2F=.true. and dos=.true.")
    return [parse_a2f_dos(p) for p in sorted(paths, key=lambda p: int(p.name[7:]))]


@dataclass
class LambdaRow:
    """One line of matdyn's ``lambda`` file.

    Attributes
    ----------
    sigma_Ry : float
        Gaussian broadening, Ry.
    lambda_ : float
        λ computed by QE.
    dos_ef : float
        N(E_F), states/spin/Ry/cell.
    omega_ln_K : float
        QE's ω_ln, kelvin.
    """

    sigma_Ry: float
    lambda_: float
    dos_ef: float
    omega_ln_K: float


@dataclass
class LambdaFile:
    """Matdyn's ``lambda`` file.

    Attributes
    ----------
    rows : list of LambdaRow
        One per broadening, in file order.
    """

    rows: list[LambdaRow]

    @property
    def sigmas_Ry(self) -> np.ndarray:
        """Broadenings, Ry."""
        return np.array([r.sigma_Ry for r in self.rows])

    @property
    def lambdas(self) -> np.ndarray:
        """λ per broadening."""
        return np.array([r.lambda_ for r in self.rows])


_LAMBDA_ROW = re.compile(r"Broadening\s+(\S+)\s+lambda\s+(\S+)\s+dos\(Ef\)\s+(\S+)\s+"
                         r"omega_ln \[K\]\s+(\S+)")


def parse_lambda_file(path: str | Path) -> LambdaFile:
    """Read matdyn's ``lambda`` file (σ, λ, N(E_F), ω_ln per broadening).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    LambdaFile
    """
    path = Path(path)
    rows = [LambdaRow(*(float(x) for x in m))
            for m in _LAMBDA_ROW.findall(path.read_text(errors="replace"))]
    if not rows:
        raise ValueError(f"{path} has no 'Broadening ... lambda ...' lines; is it matdyn's "
                         "lambda file?")
    return LambdaFile(rows)


@dataclass
class PhononDos:
    """Matdyn's phonon DOS file (``fldos``).

    Attributes
    ----------
    path : Path
    frequencies_meV : numpy.ndarray, shape (n,)
    total : numpy.ndarray, shape (n,)
        Total DOS, states per cm⁻¹ as matdyn writes it (integrates to 3·nat over cm⁻¹).
    per_site : numpy.ndarray, shape (nat, n)
        Site-projected DOS in the order of the structure's sites.
    """

    path: Path
    frequencies_meV: np.ndarray
    total: np.ndarray
    per_site: np.ndarray

    @property
    def total_per_meV(self) -> np.ndarray:
        """Total DOS per meV (integrates to 3·nat over meV)."""
        return self.total / CM1_TO_MEV

    def lowest_frequency_meV(self, tol: float = 1e-8) -> float:
        """Lowest frequency (meV) where the total DOS exceeds ``tol`` × its maximum."""
        nonzero = self.total > tol * float(np.max(self.total))
        return float(self.frequencies_meV[nonzero][0])

    def highest_frequency_meV(self, tol: float = 1e-8) -> float:
        """Highest frequency (meV) where the total DOS exceeds ``tol`` × its maximum."""
        nonzero = self.total > tol * float(np.max(self.total))
        return float(self.frequencies_meV[nonzero][-1])


def parse_phonon_dos(path: str | Path) -> PhononDos:
    """Read matdyn's phonon DOS (frequency cm⁻¹, total, per-site columns).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    PhononDos
        Frequencies in meV.

    Raises
    ------
    ValueError
        NaN/inf in the file (with the protocol's remedy) or no data.
    """
    path = Path(path)
    data = _table(path)
    _check_finite(path, data)
    per_site = data[:, 2:].T.copy() if data.shape[1] > 2 else data[:, 1][None, :].copy()
    return PhononDos(path, data[:, 0] * CM1_TO_MEV, data[:, 1], per_site)

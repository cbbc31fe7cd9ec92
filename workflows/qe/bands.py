"""Metal or insulator? The band gap around E_F after a pw.x scf.

An electron-phonon run only makes sense for a metal; an insulator gets a
document saying so.  The check works on smeared runs too (the pipeline
always smears): a band that has eigenvalues on both sides of E_F makes a
metal; otherwise the gap is the lowest eigenvalue above E_F minus the
highest at or below it, and a gap below ``metal_gap_eV`` still counts as a
metal (a semimetal behaves as one at these smearings).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from workflows.common.units import RY_TO_EV

HARTREE_TO_EV = 2.0 * RY_TO_EV
DEFAULT_METAL_GAP_EV = 0.1
"""Gaps below this (eV) count as metallic."""


@dataclass(frozen=True)
class BandGap:
    """Band gap around the Fermi level.

    Attributes
    ----------
    gap_eV : float
        CBM − VBM around E_F, eV (0 when a band crosses E_F).
    is_metal : bool
        A band crosses E_F, or the gap is below the threshold used.
    fermi_energy_eV : float
        E_F (or the highest occupied level for fixed occupations), eV.
    vbm_eV, cbm_eV : float or None
        Highest eigenvalue at/below and lowest above E_F, eV (None when absent).
    """

    gap_eV: float
    is_metal: bool
    fermi_energy_eV: float
    vbm_eV: float | None
    cbm_eV: float | None


def band_gap(eigenvalues_eV: ArrayLike, fermi_energy_eV: float,
             metal_gap_eV: float = DEFAULT_METAL_GAP_EV) -> BandGap:
    """Gap around E_F from eigenvalues on the k points of a run.

    Parameters
    ----------
    eigenvalues_eV : array, shape (n_k, n_bands)
        Kohn-Sham eigenvalues, eV (spin channels may be stacked along bands).
    fermi_energy_eV : float
        Fermi energy (or highest occupied level), eV.
    metal_gap_eV : float
        Gaps below this count as metallic.

    Returns
    -------
    BandGap

    Examples
    --------
    >>> band_gap([[0.0, 2.0], [0.5, 3.0]], 1.0).gap_eV
    1.5
    """
    e = np.atleast_2d(np.asarray(eigenvalues_eV, dtype=float))
    ef = float(fermi_energy_eV)
    below, above = e[e <= ef], e[e > ef]
    vbm = float(below.max()) if below.size else None
    cbm = float(above.min()) if above.size else None
    crossing = bool(np.any((e.min(axis=0) <= ef) & (e.max(axis=0) > ef)))
    if crossing:
        return BandGap(0.0, True, ef, vbm, cbm)
    if vbm is None or cbm is None:
        # all bands on one side of E_F: no empty band computed, cannot tell a gap
        return BandGap(0.0, True, ef, vbm, cbm)
    gap = cbm - vbm
    return BandGap(gap, gap < metal_gap_eV, ef, vbm, cbm)


def band_gap_from_xml(path: str | Path, metal_gap_eV: float = DEFAULT_METAL_GAP_EV
                      ) -> BandGap:
    """Gap from ``<outdir>/<prefix>.save/data-file-schema.xml`` (Hartree → eV).

    Parameters
    ----------
    path : str or Path
        The XML file, or the ``<prefix>.save`` directory holding it.
    metal_gap_eV : float
        Gaps below this count as metallic.

    Returns
    -------
    BandGap
    """
    path = Path(path)
    if path.is_dir():
        path = path / "data-file-schema.xml"
    root = ET.parse(path).getroot()
    band = root.find("output/band_structure")
    if band is None:
        raise ValueError(f"{path} has no output/band_structure; did the scf finish?")
    eig = [[float(x) for x in _text(ks, "eigenvalues", path).split()]
           for ks in band.findall("ks_energies")]
    fermi = band.find("fermi_energy")
    if fermi is None:
        fermi = band.find("highestOccupiedLevel")
    if fermi is None:
        raise ValueError(f"{path} has neither fermi_energy nor highestOccupiedLevel")
    if fermi.text is None:
        raise ValueError(f"{path}: <{fermi.tag}> is empty")
    return band_gap(np.array(eig) * HARTREE_TO_EV, float(fermi.text) * HARTREE_TO_EV,
                    metal_gap_eV)


def _text(parent: ET.Element, tag: str, path: Path) -> str:
    """Text of ``parent``'s ``tag`` child; ValueError naming the file when it is missing."""
    child = parent.find(tag)
    if child is None or child.text is None:
        raise ValueError(f"{path}: <{parent.tag}> has no <{tag}> values")
    return child.text


_FLOAT = r"[-+]?\d+\.\d+"


def band_gap_from_pw_output(path_or_text: str | Path,
                            metal_gap_eV: float = DEFAULT_METAL_GAP_EV
                            ) -> BandGap:
    """Gap from the eigenvalues printed in a pw.x output (last scf step).

    pw.x prints them for small k sets only (or with ``verbosity='high'``);
    prefer :func:`band_gap_from_xml` when the save directory is at hand.

    Parameters
    ----------
    path_or_text : str or Path
        Output file or its text.
    metal_gap_eV : float
        Gaps below this count as metallic.

    Returns
    -------
    BandGap
    """
    text = str(path_or_text)
    if isinstance(path_or_text, Path) or "\n" not in text:
        text = Path(path_or_text).read_text(errors="replace")
    last = text.rsplit("End of self-consistent calculation", 1)
    if len(last) != 2:
        last = text.rsplit("End of band structure calculation", 1)
    if len(last) != 2:
        raise ValueError("no 'End of self-consistent calculation' block in the pw.x output")
    body = last[1]
    fermi = re.search(rf"the Fermi energy is\s+({_FLOAT})", body)
    if fermi is None:
        fermi = re.search(rf"highest occupied(?:, lowest unoccupied)? level \(ev\):\s+({_FLOAT})",
                          body)
    if fermi is None:
        raise ValueError("no Fermi energy or highest occupied level in the pw.x output")
    body = body[:fermi.start()]
    chunks = re.split(r"k =.*?bands \(ev\):", body)[1:]
    eig = []
    for chunk in chunks:
        chunk = re.split(r"occupation numbers|\n\s*\n\s*\n", chunk.strip("\n"), maxsplit=1)[0]
        eig.append([float(x) for x in re.findall(_FLOAT, chunk)])
    if not eig or len({len(row) for row in eig}) != 1:
        raise ValueError("could not read the band energies from the pw.x output; use "
                         "band_gap_from_xml on the save directory")
    return band_gap(np.array(eig), float(fermi.group(1)), metal_gap_eV)

"""One labelled structure, the row every training-set importer gives (:class:`TrainingRecord`).

Its own module so that the importers (:mod:`stores.datasets`, :mod:`stores.jarvis_tc`)
share it without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure


@dataclass
class TrainingRecord:
    """One labelled structure: α²F(ω) or only a Tc, and optionally its site-projected DOS.

    Attributes
    ----------
    id : str
        Identifier in its source (fast-v1/database.json index, or task id).
    structure : pymatgen.core.Structure
        The cell the spectrum was computed for (site order = site DOS order).
    frequencies_meV : ndarray, shape (k,), optional
        Frequency grid of α²F (meV, ascending); None for a Tc-only record.
    a2f : ndarray, shape (k,), optional
        Total α²F(ω) (dimensionless); None for a Tc-only record.
    phdos_frequencies_meV : ndarray, shape (p,), optional
        Frequency grid of the site DOS (meV).
    site_dos : ndarray, shape (n_sites, p), optional
        Site-projected phonon DOS (states/meV per site).
    labels : dict
        Labels as the source gives them, unit in the key (``lambda_``,
        ``omega_log_K`` or ``omega_log_meV``, ...).
    formula : str
        Reduced formula.
    source : str
        Where the record came from (file or store).
    min_frequency_meV : float, optional
        Lowest phonon frequency with DOS weight (meV), when known.
    tc_K : float, optional
        Tc label (K) of a record without a spectrum (e.g. jarvis-tc); a record has a
        spectrum, a Tc label, or both.
    protocol_fingerprint : str, optional
        Protocol fingerprint of the calculation (:mod:`stores.protocol`); None when
        unknown (the BETE-NET database, documents whose identity cannot be derived).
    protocol_label : str
        The protocol in words (preset + family, QE, σ, μ*), or why it is unknown.
    """

    id: str
    structure: Structure = field(repr=False)
    frequencies_meV: np.ndarray | None = field(default=None, repr=False)
    a2f: np.ndarray | None = field(default=None, repr=False)
    phdos_frequencies_meV: np.ndarray | None = field(default=None, repr=False)
    site_dos: np.ndarray | None = field(default=None, repr=False)
    labels: dict[str, float] = field(default_factory=dict)
    formula: str = ""
    source: str = ""
    min_frequency_meV: float | None = None
    tc_K: float | None = None
    protocol_fingerprint: str | None = None
    protocol_label: str = ""

    def __post_init__(self) -> None:
        if self.a2f is None or self.frequencies_meV is None:
            if self.a2f is not None or self.frequencies_meV is not None:
                raise ValueError(f"record {self.id}: α²F and its frequency grid go together")
            if self.tc_K is None or not math.isfinite(float(self.tc_K)) or self.tc_K < 0:
                raise ValueError(f"record {self.id}: a record without α²F needs a finite "
                                 f"tc_K >= 0, got {self.tc_K!r}")
        else:
            self.frequencies_meV = np.asarray(self.frequencies_meV, dtype=float)
            self.a2f = np.asarray(self.a2f, dtype=float)
            if self.frequencies_meV.ndim != 1 or self.a2f.shape != self.frequencies_meV.shape:
                raise ValueError(
                    f"record {self.id}: α²F has shape {self.a2f.shape} but its grid has "
                    f"{self.frequencies_meV.shape}; they must be 1-D and equally long"
                )
        if self.site_dos is not None:
            self.site_dos = np.atleast_2d(np.asarray(self.site_dos, dtype=float))
            if self.phdos_frequencies_meV is None:
                raise ValueError(f"record {self.id}: a site DOS needs its frequency grid")
            self.phdos_frequencies_meV = np.asarray(self.phdos_frequencies_meV, dtype=float)
            n_sites = len(self.structure)
            if self.site_dos.shape != (n_sites, self.phdos_frequencies_meV.size):
                raise ValueError(
                    f"record {self.id}: site DOS has shape {self.site_dos.shape}, expected "
                    f"({n_sites} sites, {self.phdos_frequencies_meV.size} frequencies)"
                )
        if not self.formula:
            self.formula = self.structure.composition.reduced_formula

    @property
    def has_spectrum(self) -> bool:
        """True when the record carries α²F (else only :attr:`tc_K`)."""
        return self.a2f is not None

    @property
    def elements(self) -> set[str]:
        """Element symbols of the structure."""
        return {el.symbol for el in self.structure.composition.elements}

"""The universal interatomic potentials whose phonons the project computes (one registry).

Each entry names an atomate2 force field (:class:`atomate2.forcefields.utils.MLFF`), the keyword
arguments of its ASE calculator, and the wheel that ships its weights; a new potential is one
entry here.  Calculators are built once per process (loading SevenNet-0 costs seconds) and
never download anything: both weight files are inside the installed wheels.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import sys
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pymatgen.core import Element


class PotentialError(ValueError):
    """A potential name, element or cell the potential cannot handle (one-line message)."""


@dataclass(frozen=True)
class Potential:
    """One universal potential.

    Parameters
    ----------
    name
        The name users type (``sevennet-0``).
    force_field
        atomate2 ``MLFF`` member name (``SevenNet``, ``CHGNet``).
    calculator_kwargs
        Keyword arguments of the ASE calculator (model name ...).
    package
        Distribution that ships the calculator and its weights (its version keys documents).
    """

    name: str
    force_field: str
    calculator_kwargs: dict[str, Any] = field(default_factory=dict)
    package: str = ""

    @property
    def version(self) -> str:
        """Installed version of the package holding the weights."""
        return importlib.metadata.version(self.package)

    def calculator(self) -> Any:
        """The ASE calculator (built once per process)."""
        return _calculator(self.name)

    def covered_elements(self) -> frozenset[str]:
        """Element symbols the potential was trained on."""
        return _covered(self.name)


POTENTIALS: dict[str, Potential] = {
    "sevennet-0": Potential("sevennet-0", "SevenNet", {"model": "7net-0"}, "sevenn"),
    "sevennet-l3i5": Potential("sevennet-l3i5", "SevenNet", {"model": "7net-l3i5"}, "sevenn"),
    "sevennet-mf-0": Potential("sevennet-mf-0", "SevenNet", {"model": "7net-mf-0",
                                                             "modal": "PBE"}, "sevenn"),
    "chgnet": Potential("chgnet", "CHGNet", {}, "chgnet"),
}
"""Registry: user name → potential.  SevenNet-0 is the default; the sevenn wheel also ships
SevenNet-l3i5 (l_max 3, 5 blocks) and the multi-fidelity SevenNet-MF-0 (its PBE head)."""

DEFAULT_POTENTIAL = "sevennet-0"


def get_potential(name: str | None = None) -> Potential:
    """The registered potential called ``name`` (case-insensitive; None = the default)."""
    key = (name or DEFAULT_POTENTIAL).lower()
    if key not in POTENTIALS:
        raise PotentialError(f"unknown potential {name!r}: choose one of "
                             f"{', '.join(sorted(POTENTIALS))}")
    return POTENTIALS[key]


def calculator(potential: str = DEFAULT_POTENTIAL) -> Any:
    """The ASE calculator of a registered potential, built once per process."""
    return _calculator(get_potential(potential).name)


def keep_freed_memory() -> None:
    """Let this process reuse the memory it frees instead of returning it (glibc only).

    One force evaluation allocates and frees tensors of tens of MB; glibc serves those with
    mmap and unmaps them on free, so every evaluation faults in fresh zeroed pages.  That was
    15 % of the CPU time of all 802 bete-net cells (574 s system time of 3917 s, `bete phonons
    --workers 2`, 2 Dec 2026); without mmap and trimming: 4.3 → 0.4 s system time on six cells,
    user time and peak memory unchanged (docs/mlip-phonons.md, Cost).  Elsewhere: nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_max = -1, -4  # malloc.h
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**31 - 1)


@cache
def _calculator(name: str) -> Any:
    from atomate2.forcefields.utils import MLFF, ase_calculator

    keep_freed_memory()
    pot = POTENTIALS[name]
    return ase_calculator(MLFF(pot.force_field), **pot.calculator_kwargs)


@cache
def _covered(name: str) -> frozenset[str]:
    calc = _calculator(name)
    type_map = getattr(calc, "type_map", None)  # SevenNet: atomic number → model index
    if type_map is not None:
        return frozenset(Element.from_Z(int(z)).symbol for z in type_map)
    n_species = calc.model.atom_embedding.embedding.num_embeddings  # CHGNet: Z = 1 … 94
    return frozenset(Element.from_Z(z).symbol for z in range(1, n_species + 1))

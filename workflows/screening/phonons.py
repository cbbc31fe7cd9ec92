"""Coarse phonon DOS for CPD/FPD screening: a DFPT phonon run without electron-phonon.

The CPD model of BETE-NET takes each structure's site-projected phonon DOS from a coarse
(2×2×2 q-grid) DFPT run.  The el-ph flow always computes the electron-phonon part too, so
this module builds a phonon-only chain from the same input set (same preset, overrides,
pseudopotentials): pw.x scf on the k grid → ph.x without ``electron_phonon`` (no dense
scf, no ``la2F``, no double-delta sums) → q2r.x → matdyn.x DOS.  It costs roughly half to
two thirds of a ``fast`` el-ph run of the same cell.

The result is stored as a ``coarse_phdos`` document (job output; the DOS arrays in the
``data`` blob store), found again by its input hash, so a structure is computed once.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jobflow import Flow, Maker, job
from pymatgen.core import Structure

from stores.queries import find_phonon_dos
from stores.schemas import PHDOS_DOC_TYPE, PhononDos, PhononDosDocument
from workflows.common.physics import DEFAULT_STABILITY_THRESHOLD_MEV, lowest_frequency_meV
from workflows.qe.local import run_flow_locally
from workflows.qe.sets import ElphInputGenerator, ElphInputSet

logger = logging.getLogger(__name__)

_ELPH_PH_KEYS = ("electron_phonon", "el_ph_sigma", "el_ph_nsigma", "fildvscf", "trans")


def phonon_only_inputs(input_set: ElphInputSet) -> dict[str, Any]:
    """pw.x/ph.x/q2r.x/matdyn.x inputs of a phonon-only run, from an el-ph input set."""
    scf = copy.deepcopy(input_set.scf)
    ph = copy.deepcopy(input_set.ph)
    for key in _ELPH_PH_KEYS:
        ph.set("inputph", key, None)
    q2r = copy.deepcopy(input_set.q2r)
    q2r.set("input", "la2f", None)
    matdyn = copy.deepcopy(input_set.matdyn)
    matdyn.set("input", "la2f", None)
    matdyn.set("input", "dos", True)
    return {"scf": scf, "ph": ph, "q2r": q2r, "matdyn": matdyn}


@dataclass
class PhononDosMaker(Maker):
    """Phonon-only DFPT run on a coarse q grid → site-projected phonon DOS.

    Parameters
    ----------
    name
        Flow name prefix.
    input_set_generator
        The el-ph input-set generator (as :class:`workflows.qe.flows.ElphFlowMaker`'s);
        ``q_grid`` replaces its preset's q grid.
    scratch_dir
        Parent of the calculation directories; None = the ``scratch_dir`` setting.
    q_grid
        Coarse q grid (the paper's CPD: 2×2×2).
    stability_threshold_meV
        DOS weight below this marks the structure as dynamically unstable.
    """

    name: str = "coarse_phdos"
    input_set_generator: ElphInputGenerator = field(default_factory=ElphInputGenerator)
    scratch_dir: str | None = None
    q_grid: tuple[int, int, int] = (2, 2, 2)
    stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV

    @classmethod
    def from_preset(cls, preset: str = "fast", overrides: Mapping[str, Any] | None = None,
                    pseudo_family: str | None = None, max_atoms: int | None = None,
                    **options: Any) -> PhononDosMaker:
        """The maker of a preset (arguments as :meth:`ElphFlowMaker.from_preset`)."""
        from workflows.qe.flows import ElphFlowMaker

        elph = ElphFlowMaker.from_preset(preset, overrides, pseudo_family, max_atoms)
        return cls(input_set_generator=elph.input_set_generator, **options)

    @property
    def preset(self) -> str:
        """Name (or YAML file) of the generator's preset."""
        return str(self.input_set_generator.preset)

    def coarse_generator(self) -> ElphInputGenerator:
        """The generator with the coarse q grid, pinned (see ``ElphInputGenerator.pinned``)."""
        overrides = {**self.input_set_generator.overrides,
                     "q_grid": [int(q) for q in self.q_grid]}
        return replace(self.input_set_generator, overrides=overrides).pinned()

    def input_set(self, structure: Structure) -> ElphInputSet:
        """The el-ph input set the phonon-only inputs derive from (validates the structure)."""
        return self.coarse_generator().get_input_set(structure)

    @staticmethod
    def calculation_key(input_set: ElphInputSet) -> str:
        """Hash of the phonon-only run: derived from the el-ph input hash it is built from."""
        return hashlib.sha256(f"{PHDOS_DOC_TYPE}:{input_set.input_hash()}".encode()).hexdigest()

    def workdir(self, input_set: ElphInputSet, key: str) -> Path:
        """``<scratch>/<formula>-phdos-<hash[:16]>``."""
        from workflows.qe.flows import calculation_dir

        return calculation_dir(self.scratch_dir, input_set, key, "phdos")

    def make(self, structure: Structure, source_id: str | None = None,
             input_set: ElphInputSet | None = None) -> Flow:
        """One-job flow whose output is the ``coarse_phdos`` document.

        ``input_set``: this maker's :meth:`input_set` of ``structure`` if already built.
        """
        input_set = input_set or self.input_set(structure)
        key = self.calculation_key(input_set)
        j = phonon_dos_job(input_set.structure, self.coarse_generator(),
                           str(self.workdir(input_set, key)), key, source_id,
                           self.stability_threshold_meV)
        j.metadata.update({"input_hash": key, "formula": input_set.structure.composition.
                           reduced_formula, "preset": f"{self.preset}-phdos"})
        return Flow([j], output=j.output, name=f"{self.name} {j.metadata['formula']}")


@job(name="coarse_phdos", data=["phdos"])
def phonon_dos_job(structure: Structure, generator: ElphInputGenerator, workdir: str,
                   input_hash: str, source_id: str | None = None,
                   stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV,
                   ) -> dict[str, Any]:
    """pw.x → ph.x (phonons only) → q2r.x → matdyn.x DOS; returns the document."""
    from workflows.qe.matdyn_parsers import parse_phonon_dos
    from workflows.qe.steps import run_step

    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    input_set.write(wd)   # also prepares the pseudopotential paths like the el-ph flow
    inputs = phonon_only_inputs(input_set)
    walls = {}
    for code, step in (("pw", "scf"), ("ph", "ph"), ("q2r", "q2r"), ("matdyn", "matdyn")):
        walls[step] = run_step(code, inputs[step], f"phonly_{step}", wd)["wall_time_s"]
    dos = parse_phonon_dos(wd / str(inputs["matdyn"].get("fldos")))
    min_freq = lowest_frequency_meV(dos.frequencies_meV, dos.total)
    comp = input_set.structure.composition
    return PhononDosDocument(
        input_hash=input_hash, source_id=source_id, formula=comp.reduced_formula,
        nsites=len(structure), structure=input_set.structure.as_dict(),
        preset=str(generator.preset), q_grid=list(input_set.q_grid),
        k_grid=list(input_set.k_grid), min_frequency_meV=float(min_freq),
        dynamically_stable=bool(min_freq >= stability_threshold_meV),
        stability_threshold_meV=stability_threshold_meV, wall_times_s=walls, workdir=str(wd),
        phdos=PhononDos(frequencies_meV=dos.frequencies_meV.tolist(), total=dos.total.tolist(),
                        site_dos=[list(map(float, row)) for row in dos.per_site]),
    ).model_dump(mode="json")


def run_phonon_dos(structures: Sequence[tuple[str | None, Structure]], maker: PhononDosMaker,
                   store: Any, reuse: bool = True,
                   progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run (or reuse) the phonon-only flow of every structure here; returns the documents."""
    say = progress or (lambda _m: None)
    out = []
    for source_id, structure in structures:
        input_set = maker.input_set(structure)
        key = maker.calculation_key(input_set)
        formula = input_set.structure.composition.reduced_formula
        stored = find_phonon_dos(store, key) if reuse else None
        if stored is not None:
            say(f"{formula} ({source_id}): coarse phonon DOS already in the store")
            out.append(stored)
            continue
        say(f"{formula} ({source_id}): phonon-only DFPT (q {list(maker.q_grid)}) in "
            f"{maker.workdir(input_set, key)}")
        flow = maker.make(structure, source_id, input_set=input_set)
        out.append(run_flow_locally(flow, store))
    return out

"""MLIP phonons as a jobflow flow on atomate2's force-field phonon machinery.

:class:`MLIPPhononMaker` is atomate2's :class:`~atomate2.forcefields.flows.phonons.PhononMaker`
configured for screening: no relaxation (the DFPT flow does not relax either), no static energy
run, no Born charges, phonopy finite displacements of 0.01 Å in a supercell at least 10 Å
across (``prefer_90_degrees=False``: the smallest such cell), all displaced supercells
evaluated in one job (``socket=True``) by a calculator loaded once per process.

Its last job is replaced.  atomate2's ``generate_frequencies_eigenvectors`` computes a band
structure along a seekpath path, thermodynamics and a total DOS (17 s of the 45 s of fcc Al
measured here); screening needs none of that but does need what it lacks: the DOS projected on
the sites of the given cell, binned to the model's 51-bin grid, and the lowest frequency on a
dense mesh.  :func:`mlip_phonon_analysis` builds the same phonopy object from the same
displacements and forces and returns an :class:`~stores.schemas.MLIPPhononDocument`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from atomate2.common.jobs.phonons import run_phonon_displacements
from atomate2.common.utils import get_supercell_matrix
from atomate2.forcefields.flows.phonons import PhononMaker
from atomate2.forcefields.jobs import ForceFieldStaticMaker
from jobflow import Flow, Job, job
from pymatgen.core import Structure

from betenet_model.targets import GRID_MEV
from stores.schemas import MLIPPhononDocument
from workflows.common.grid import grid_values
from workflows.common.physics import DEFAULT_STABILITY_THRESHOLD_MEV
from workflows.common.units import CM1_TO_MEV
from workflows.mlip.permutations import composed_permutations
from workflows.mlip.potentials import DEFAULT_POTENTIAL, get_potential

THZ_TO_MEV = 4.135667696
"""1 THz in meV (h × 1 THz / e), phonopy's frequency unit → ours."""
MAX_FREQUENCY_MEV = 1000.0
"""No solid has phonons above ~500 meV (H₂ stretch); beyond this the forces are nonsense."""


class MLIPPhononError(ValueError):
    """The potential gave forces or frequencies that cannot be a result (one-line message)."""


def _static_maker(potential: str) -> ForceFieldStaticMaker:
    """atomate2's force-field static job on the registry's calculator (loaded once per process).

    The calculator comes through atomate2's own hook for custom calculators (an import path in
    ``force_field_name``), so atomate2 keeps treating the job as a ``ForceFieldStaticMaker``.
    """
    pot = get_potential(potential)
    return ForceFieldStaticMaker(
        name=f"{pot.name} static",
        force_field_name={"@module": "workflows.mlip.potentials", "@callable": "calculator"},
        calculator_kwargs={"potential": pot.name},
        relax_kwargs={"final_atoms_object_file": None},  # atomate2 would append to ./*.xyz
        ionic_step_data=None)  # the phonon flow reads output.forces; the steps repeat them


@dataclass
class MLIPPhononMaker(PhononMaker):
    """Force-field phonons of a given cell (no relaxation) with a site-projected DOS.

    Parameters
    ----------
    potential
        Registry name of the potential (default SevenNet-0).
    mesh_length_A
        phonopy mesh length (Å): q-mesh divisions ≈ length × |b_i| (50 Å → 20³ for fcc Al).
    dos_step_meV
        Spacing of the DOS frequency grid (meV).
    dos_sigma_meV
        Gaussian smearing of the DOS (meV); phonopy's tetrahedron DOS costs 20× more here.
    stability_threshold_meV
        Lowest mesh frequency below this → dynamically unstable.
    max_supercell_atoms
        Larger supercells are refused before any force evaluation.
    residual_forces
        Subtract the forces the potential leaves on the undisplaced supercell (evaluated only
        where symmetry allows them) and displace one way; False is phonopy's ± default,
        which residual forces contaminate (see :func:`_phonopy`).

    The atomate2 fields keep their meaning; the defaults differ as described in the module.
    """

    name: str = "mlip phonons"
    potential: str = DEFAULT_POTENTIAL
    displacement: float = 0.01
    min_length: float | None = 10.0
    prefer_90_degrees: bool = False
    bulk_relax_maker: Any = None
    static_energy_maker: Any = None
    born_maker: Any = None
    socket: bool = True
    store_force_constants: bool = False
    phonon_displacement_maker: ForceFieldStaticMaker = field(
        default_factory=lambda: _static_maker(DEFAULT_POTENTIAL))
    mesh_length_A: float = 50.0
    dos_step_meV: float = 0.25
    dos_sigma_meV: float = 0.5
    stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV
    max_supercell_atoms: int = 400
    residual_forces: bool = True
    get_supercell_size_kwargs: dict = field(default_factory=lambda: {"force_diagonal": True})

    def __post_init__(self) -> None:
        """Point the displacement job at this Maker's potential."""
        pot = get_potential(self.potential)
        self.potential = pot.name
        if self.phonon_displacement_maker.calculator_kwargs.get("potential") != pot.name:
            self.phonon_displacement_maker = _static_maker(pot.name)

    def settings(self) -> dict[str, Any]:
        """Everything besides the structure and the potential that fixes the numbers."""
        return {"displacement_A": self.displacement, "min_length_A": self.min_length,
                "prefer_90_degrees": self.prefer_90_degrees, "symprec": self.symprec,
                "supercell": self.get_supercell_size_kwargs,
                "mesh_length_A": self.mesh_length_A, "dos_step_meV": self.dos_step_meV,
                "dos_sigma_meV": self.dos_sigma_meV,
                "stability_threshold_meV": self.stability_threshold_meV,
                "residual_forces": self.residual_forces}

    def key(self, structure: Structure) -> str:
        """Store key: structure + potential name + package version + settings."""
        pot = get_potential(self.potential)
        return _sha(structure_hash(structure), pot.name, pot.version, _sha(self.settings()))

    def supercell_matrix(self, structure: Structure) -> list[list[int]]:
        """atomate2's supercell choice (≥ ``min_length`` Å across), checked against the limit."""
        matrix = get_supercell_matrix(structure=structure, min_length=self.min_length or 10.0,
                                      max_length=self.max_length,  # type: ignore[arg-type]
                                      prefer_90_degrees=self.prefer_90_degrees,
                                      allow_orthorhombic=self.allow_orthorhombic,
                                      **self.get_supercell_size_kwargs)
        n = round(abs(np.linalg.det(np.asarray(matrix)))) * len(structure)
        if n > self.max_supercell_atoms:
            raise MLIPPhononError(
                f"{structure.composition.reduced_formula}: the {self.min_length} Å supercell "
                f"has {n} atoms, above the limit of {self.max_supercell_atoms} (memory and "
                "time); pass a primitive cell or raise max_supercell_atoms")
        return [[int(v) for v in row] for row in matrix]

    def make(self, structure: Structure, source_id: str | None = None,  # type: ignore[override]
             supercell_matrix: list[list[int]] | None = None) -> Flow:
        """Supercell → displacements → forces (one job) → phonopy analysis document."""
        matrix = supercell_matrix or self.supercell_matrix(structure)
        displacements = mlip_phonon_displacements(structure, matrix, self.displacement,
                                                  self.symprec, self.residual_forces)
        forces = run_phonon_displacements(
            displacements=displacements.output, structure=structure, supercell_matrix=matrix,
            phonon_maker=self.phonon_displacement_maker, socket=self.socket)
        analysis = mlip_phonon_analysis(
            structure, matrix, forces.output, self.potential, self.settings(),
            self.key(structure), source_id)
        jobs: list[Flow | Job] = [displacements, forces, analysis]
        return Flow(jobs, analysis.output,
                    name=f"{self.name} {structure.composition.reduced_formula}")


def structure_hash(structure: Structure) -> str:
    """sha256 of a cell: lattice, species and fractional positions (rounded to 1e-6)."""
    payload = {"lattice": np.round(structure.lattice.matrix, 6).tolist(),
               "species": [str(sp) for sp in structure.species],
               "frac": np.round(np.mod(structure.frac_coords, 1.0), 6).tolist()}
    return _sha(payload)


def _sha(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


_LAST_PHONOPY: dict[str, Any] = {}
"""The Phonopy object the displacement job built, for the analysis job of the same cell.

Building it means a symmetry search over the supercell (its permutations, now composed by
:mod:`workflows.mlip.permutations`: 18 CPU s over all 802 bete-net cells); the two jobs run one
after the other in one process, so the analysis takes it from here instead of searching again.
Elsewhere (another process) it is rebuilt.
"""


def _phonopy(structure: Structure, supercell_matrix: list[list[int]], displacement: float,
             symprec: float, residual_forces: bool = False) -> tuple[Any, bool]:
    """Phonopy object of the given cell with its displacements (built once per cell).

    Returns the object and whether the undisplaced supercell is evaluated too.  The cell was
    relaxed with DFT, not with the potential, so the potential leaves forces on atoms whose
    site symmetry allows a force (a polar site: a free coordinate, as Au in MoSi2-type ScAu2).
    phonopy's default (± pairs where symmetry does not supply −u) does not cancel them: on
    NiSe2 (Pnnm) it gives a −14 meV mode at 0.01 Å, −22 at 0.005 and −7 at 0.02 Å.  With
    ``residual_forces`` those forces are evaluated once on the undisplaced supercell and
    subtracted from every displaced one (phonopy's "subtract residual forces"), and atoms
    are displaced one way only: NiSe2 then gives 0.00 meV at every displacement, and random
    bete-net cells need 7–14 % fewer supercell-atom force evaluations than with the ± default.
    Without polar sites the residual forces vanish by symmetry and are not evaluated.
    """
    from phonopy import Phonopy
    from pymatgen.io.phonopy import get_phonopy_structure

    key = _sha(structure_hash(structure), supercell_matrix, displacement, symprec,
               residual_forces)
    cached = _LAST_PHONOPY.pop(key, None)
    if cached is not None:
        return cached
    with composed_permutations():
        phonon = Phonopy(get_phonopy_structure(structure), supercell_matrix,
                         primitive_matrix="P", symprec=symprec, is_symmetry=True)
    if not residual_forces:
        phonon.generate_displacements(distance=displacement)
        return phonon, False
    phonon.generate_displacements(distance=displacement, is_plusminus=False)
    return phonon, has_polar_sites(phonon.symmetry)


def has_polar_sites(symmetry: Any) -> bool:
    """Whether some atom's site symmetry leaves a direction invariant (a force is allowed).

    The mean of a site's rotations projects onto the vectors they all leave unchanged; it is
    zero exactly when symmetry forces that atom's residual force to vanish.
    """
    return any(np.abs(np.mean(symmetry.get_site_symmetry(atom), axis=0)).max() > 1e-8
               for atom in symmetry.get_independent_atoms())


@job(name="mlip phonon displacements")
def mlip_phonon_displacements(structure: Structure, supercell_matrix: list[list[int]],
                              displacement: float, symprec: float,
                              residual_forces: bool = False) -> list[Structure]:
    """The displaced supercells (phonopy, symmetry-reduced), as atomate2's job makes them.

    Like atomate2's ``generate_phonon_displacements`` but on the given cell's own primitive
    matrix, with the undisplaced supercell last where residual forces are subtracted (see
    :func:`_phonopy`); the Phonopy object is kept for :func:`mlip_phonon_analysis`.
    """
    from pymatgen.io.phonopy import get_pmg_structure

    phonon, with_reference = _phonopy(structure, supercell_matrix, displacement, symprec,
                                      residual_forces)
    _LAST_PHONOPY.clear()
    _LAST_PHONOPY[_sha(structure_hash(structure), supercell_matrix, displacement, symprec,
                       residual_forces)] = (phonon, with_reference)
    cells = list(phonon.supercells_with_displacements)
    if with_reference:
        cells.append(phonon.supercell)
    return [get_pmg_structure(cell) for cell in cells]


@job(name="mlip phonon analysis", output_schema=MLIPPhononDocument)
def mlip_phonon_analysis(structure: Structure, supercell_matrix: list[list[int]],
                         displacement_data: dict[str, list], potential: str,
                         settings: dict[str, Any], key: str,
                         source_id: str | None = None) -> MLIPPhononDocument:
    """Force constants → mesh DOS, site-projected DOS, lowest frequency; the document."""
    formula = structure.composition.reduced_formula
    forces = [np.asarray(f, dtype=float) for f in displacement_data["forces"]]
    if not all(np.all(np.isfinite(f)) for f in forces):
        raise MLIPPhononError(f"{formula}: {potential} returned non-finite forces; the "
                              "potential cannot describe this structure (not stored)")
    if max(float(np.abs(f).max()) for f in forces) < 1e-8:
        cutoff = getattr(get_potential(potential).calculator(), "cutoff", None)
        raise MLIPPhononError(
            f"{formula}: {potential} gives zero forces on every displaced atom (no neighbour "
            f"inside its {cutoff or ''} Å cutoff), so its frequencies are undefined; use "
            "another potential (not stored)")
    phonon, with_reference = _phonopy(structure, supercell_matrix, settings["displacement_A"],
                                      settings["symprec"],
                                      settings.get("residual_forces", False))
    n_evaluated = len(forces)
    if n_evaluated != len(phonon.supercells_with_displacements) + with_reference:
        raise MLIPPhononError(f"{formula}: {n_evaluated} force sets for "
                              f"{len(phonon.supercells_with_displacements)} displacements"
                              + (" and the undisplaced supercell" if with_reference else ""))
    if with_reference:
        forces = [f - forces[-1] for f in forces[:-1]]
    phonon.forces = forces
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants()
    phonon.run_mesh(settings["mesh_length_A"], is_gamma_center=True, with_eigenvectors=True,
                    is_mesh_symmetry=False)
    freqs = phonon.mesh.frequencies * THZ_TO_MEV
    if not np.all(np.isfinite(freqs)) or np.abs(freqs).max() > MAX_FREQUENCY_MEV:
        raise MLIPPhononError(f"{formula}: {potential} gave non-finite or unphysical phonon "
                              f"frequencies (|ω| > {MAX_FREQUENCY_MEV:.0f} meV); not stored")
    step = settings["dos_step_meV"]
    lo = min(0.0, np.floor(freqs.min() / step) * step - 4 * step)
    hi = np.ceil(freqs.max() / step) * step + 4 * step
    phonon.run_projected_dos(sigma=settings["dos_sigma_meV"] / THZ_TO_MEV,
                             freq_min=lo / THZ_TO_MEV, freq_max=hi / THZ_TO_MEV,
                             freq_pitch=step / THZ_TO_MEV)
    pdos = phonon.projected_dos
    w = np.asarray(pdos.frequency_points) * THZ_TO_MEV
    site = np.asarray(pdos.projected_dos) / THZ_TO_MEV * CM1_TO_MEV  # states/THz → /cm⁻¹
    total = site.sum(axis=0)
    pos = w > 0
    weight = total[pos]
    mean_log = float(np.exp(np.sum(weight * np.log(w[pos])) / np.sum(weight)))
    mean = float(np.sum(weight * w[pos]) / np.sum(weight))
    min_freq = float(freqs.min())
    threshold = settings["stability_threshold_meV"]
    warnings = []
    if freqs.max() > GRID_MEV[-1]:
        warnings.append(f"modes up to {freqs.max():.1f} meV lie above the model grid "
                        f"({GRID_MEV[-1]:g} meV)")
    return MLIPPhononDocument(
        key=key, formula=formula, nsites=len(structure),
        elements=sorted({el.symbol for el in structure.composition.elements}),
        structure=structure.as_dict(), structure_hash=structure_hash(structure),
        source_id=source_id, potential=potential,
        potential_package=get_potential(potential).package,
        potential_version=get_potential(potential).version, settings=settings,
        settings_hash=_sha(settings), supercell_matrix=supercell_matrix,
        n_supercell_atoms=len(phonon.supercell), n_displacements=n_evaluated,
        mesh=[int(m) for m in phonon.mesh.mesh_numbers], min_frequency_meV=min_freq,
        stability_threshold_meV=threshold, dynamically_stable=bool(min_freq >= threshold),
        mean_log_frequency_meV=mean_log, mean_frequency_meV=mean,
        max_frequency_meV=float(freqs.max()), frequencies_meV=w.tolist(),
        total_dos=total.tolist(), site_dos=site.tolist(),
        site_dos_grid=grid_values(w, site, "MLIP site DOS", formula).tolist(),
        wall_s=0.0, warnings=warnings)

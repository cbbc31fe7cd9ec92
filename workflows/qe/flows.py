"""Flow Makers of the QE electron-phonon workflow (atomate2 style)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jobflow import Flow, Job, Maker, OutputReference
from pymatgen.core import Structure

from stores.constants import DEFAULT_REFERENCE_SIGMA_RY
from stores.protocol import ProtocolIdentity, directory_family_sha256, recipe_sha256
from stores.settings import get_settings
from workflows.common.physics import DEFAULT_MU_STAR, DEFAULT_STABILITY_THRESHOLD_MEV
from workflows.qe.errors import BeteInputError
from workflows.qe.jobs import (
    matdyn_job,
    ph_fanout_job,
    ph_job,
    pin_uuid,
    relax_job,
    scf_job,
    task_document_job,
)
from workflows.qe.pseudos import PseudoFamily
from workflows.qe.sets import ElphInputGenerator, ElphInputSet


def calculation_dir(scratch_dir: str | None, input_set: ElphInputSet, key: str,
                    kind: str = "") -> Path:
    """``<scratch>/<formula>[-<kind>]-<key[:16]>``; scratch None = the ``scratch_dir`` setting."""
    base = Path(scratch_dir or get_settings().scratch_dir).expanduser().resolve()
    formula = re.sub(r"[^A-Za-z0-9]", "", input_set.structure.composition.reduced_formula)
    return base / "-".join(filter(None, (formula, kind, key[:16])))


@dataclass
class ElphFlowMaker(Maker):
    """pw.x (dense, ``la2F``) → pw.x → ph.x el-ph → q2r.x → matdyn.x → task document.

    The maker holds its input-set generator (atomate2's pattern) and hands it to every
    job; each job builds its inputs once from it.  :meth:`from_preset` builds the maker
    from a preset name, overrides and a pseudopotential family.

    Parameters
    ----------
    name
        Flow name prefix.
    input_set_generator
        Preset, overrides, pseudopotential family and atom limit of the inputs
        (:class:`~workflows.qe.sets.ElphInputGenerator`); the family and the atom limit
        it leaves to the settings are read at ``make`` time (:meth:`ElphInputGenerator.pinned`).
    relax
        None, ``"relax"`` or ``"vc-relax"``: relax the cell first.
    fan_out_q
        Run ph.x as one job per irreducible q point (a cluster runs them in parallel).
    keep_scratch
        Keep wavefunctions, ``_ph*`` and dvscf files after matdyn (default: remove them).
    scratch_dir
        Parent of the calculation directories; None = the ``scratch_dir`` setting.  On a
        cluster it must be visible from every worker.
    reference_sigma_Ry, mu_star, stability_threshold_meV
        Headline broadening, Coulomb pseudopotential and stability threshold.
    """

    name: str = "elph"
    input_set_generator: ElphInputGenerator = field(default_factory=ElphInputGenerator)
    relax: str | None = None
    fan_out_q: bool = False
    keep_scratch: bool = False
    scratch_dir: str | None = None
    reference_sigma_Ry: float = DEFAULT_REFERENCE_SIGMA_RY
    mu_star: float = DEFAULT_MU_STAR
    stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV

    @classmethod
    def from_preset(cls, preset: str | Path = "fast", overrides: Mapping[str, Any] | None = None,
                    pseudo_family: PseudoFamily | str | Path | None = None,
                    max_atoms: int | None = None, **options: Any) -> ElphFlowMaker:
        """The maker of a preset (``fast``, ``standard``, ``accurate`` or a YAML file).

        Parameters
        ----------
        preset, overrides, pseudo_family, max_atoms
            The :class:`~workflows.qe.sets.ElphInputGenerator` fields (``pseudo_family`` is
            its ``family``: a directory, an SSSP-style JSON, ``debian``; None = the setting).
        **options
            The other fields of the maker (``relax``, ``scratch_dir``, ``mu_star``, ...).
        """
        generator = ElphInputGenerator(preset=preset, overrides=dict(overrides or {}),
                                       family=pseudo_family, max_atoms=max_atoms)
        return cls(input_set_generator=generator, **options)

    @property
    def preset(self) -> str:
        """Name (or YAML file) of the generator's preset."""
        return str(self.input_set_generator.preset)

    def input_set(self, structure: Structure) -> ElphInputSet:
        """Validate the structure and build its inputs now (errors before any QE run)."""
        return self.input_set_generator.get_input_set(structure)

    def protocol_identity(self, qe_version: str | None = None) -> ProtocolIdentity:
        """The protocol identity of this maker's calculations, before any calculation.

        Parameters
        ----------
        qe_version
            QE version; None = ask pw.x (:func:`workflows.qe.run.detect_qe_version`).

        Raises
        ------
        BeteInputError
            When the pseudopotential family cannot be read.
        """
        from workflows.qe.run import detect_qe_version

        generator = self.input_set_generator
        effective = generator.resolved_preset()
        family = generator.get_family()
        try:
            family_digest = directory_family_sha256(family.directory)
        except ValueError as exc:
            raise BeteInputError(f"pseudopotential family {family.label}: {exc}") from exc
        return ProtocolIdentity(
            preset=str(effective["name"]), recipe_sha256=recipe_sha256(effective),
            overrides=dict(generator.overrides), pseudo_family=family.name,
            pseudo_family_sha256=family_digest,
            qe_version=qe_version or detect_qe_version(),
            reference_sigma_Ry=round(float(self.reference_sigma_Ry), 6),
            mu_star=float(self.mu_star))

    def calculation_key(self, input_set: ElphInputSet) -> str:
        """Input hash of the calculation (the relaxation choice included)."""
        if not self.relax:
            return input_set.input_hash()
        payload = json.dumps({"inputs": input_set.input_hash(), "relax": self.relax})
        return hashlib.sha256(payload.encode()).hexdigest()

    def workdir(self, input_set: ElphInputSet, key: str) -> Path:
        """Calculation directory: ``<scratch>/<formula>-<hash[:16]>``."""
        return calculation_dir(self.scratch_dir, input_set, key)

    def make(self, structure: Structure, source_id: str | None = None,
             input_set: ElphInputSet | None = None) -> Flow:
        """The flow for one structure; the last job's output is the task document.

        ``input_set``: this maker's :meth:`input_set` of ``structure`` when the caller has
        already built it (it is not built again).
        """
        input_set = input_set or self.input_set(structure)
        key = self.calculation_key(input_set)
        workdir = str(self.workdir(input_set, key))
        generator = self.input_set_generator.pinned()  # the jobs may run elsewhere, later
        prepared: Structure | OutputReference = input_set.structure
        jobs: list[Job] = []
        run = f"{key}@{workdir}"  # a flow resumes in its calculation directory: job uuids
        if self.relax:            # per directory and step, so a resumed flow adds no copies
            relax = pin_uuid(relax_job(prepared, generator, workdir, self.relax), run)
            jobs.append(relax)
            prepared = relax.output
        scf = pin_uuid(scf_job(prepared, generator, workdir), run)
        ph_maker = ph_fanout_job if self.fan_out_q else ph_job
        ph = pin_uuid(ph_maker(scf.output, prepared, generator, workdir), run)
        matdyn = pin_uuid(matdyn_job(ph.output, prepared, generator, workdir,
                                     self.keep_scratch), run)
        doc = pin_uuid(task_document_job(prepared, generator, workdir, scf.output, ph.output,
                                         matdyn.output, source_id, key,
                                         reference_sigma_Ry=self.reference_sigma_Ry,
                                         mu_star=self.mu_star,
                                         stability_threshold_meV=self.stability_threshold_meV,
                                         job_uuids={j.name: j.uuid
                                                    for j in [*jobs, scf, ph, matdyn]}), run)
        jobs += [scf, ph, matdyn, doc]
        formula = input_set.structure.composition.reduced_formula
        for j in jobs:
            j.metadata.update({"input_hash": key, "formula": formula, "preset": self.preset})
        # jobflow annotates ``jobs`` as an (invariant) list of Flow | Job; it only reads it
        return Flow(cast("list[Flow | Job]", jobs), output=doc.output,
                    name=f"{self.name} {formula} {self.preset}")

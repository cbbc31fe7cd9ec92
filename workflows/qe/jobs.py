"""jobflow jobs of the QE electron-phonon flow.

Every job gets the structure, the flow's input-set generator
(:class:`~workflows.qe.sets.ElphInputGenerator`, pinned by the Maker: it serialises with
the job and builds the same inputs on any worker) and the calculation directory, builds
its input set once from them, and runs its QE steps through
:func:`workflows.qe.steps.run_step` (retries with handlers, restart markers).  Jobs pass
small dictionaries; only the last job returns the task document, whose arrays go to the
``data`` blob store.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from jobflow import CURRENT_JOB, Flow, Job, Response, job
from pymatgen.core import Structure

from stores.constants import DEFAULT_REFERENCE_SIGMA_RY
from stores.schemas import ELPH_BLOB_FIELDS, ScfSummary
from workflows.common.physics import DEFAULT_MU_STAR, DEFAULT_STABILITY_THRESHOLD_MEV
from workflows.qe.bands import band_gap_from_xml
from workflows.qe.documents import early_document, elph_document
from workflows.qe.errors import QEError
from workflows.qe.matdyn_parsers import parse_a2f_dos_files, parse_phonon_dos
from workflows.qe.parsers import parse_pw_output
from workflows.qe.ph_files import first_q_not_on_disk, q_list_count
from workflows.qe.sets import ElphInputGenerator, ElphInputSet
from workflows.qe.steps import read_marker, remove_scratch, run_step, write_marker

logger = logging.getLogger(__name__)


STEP_UUIDS = uuid.UUID("5f0c51c4-8a2b-4c1e-9d3e-6b7e0a1f2c3d")
"""Namespace of the jobs' uuids (:func:`pin_uuid`)."""


def pin_uuid(j: Job, parent: str) -> Job:
    """Give ``j`` the uuid of its step, the same in every run.

    The uuid is derived from ``parent`` (the calculation key and directory, or the uuid of
    the job that created ``j``) and the step's name (the job's).  A flow resumed in its
    calculation directory runs its finished jobs again (their QE steps skipped by the
    markers); with the uuids of the first run their outputs replace the stored ones instead
    of adding copies.  A run of the same inputs in another directory is another run, with
    its own uuids.  Call it before another job takes ``j.output``.
    """
    j.set_uuid(str(uuid.uuid5(STEP_UUIDS, f"{parent}/{j.name}")))
    return j


def _paths(input_set: ElphInputSet, workdir: Path) -> tuple[Path, str]:
    outdir = str(input_set.scf.get("outdir", "./tmp"))
    prefix = str(input_set.scf.get("prefix", "bete"))
    return workdir / outdir / f"{prefix}.save", prefix


@job(name="relax")
def relax_job(structure: Structure, generator: ElphInputGenerator, workdir: str,
              calculation: str = "vc-relax") -> Structure:
    """Relax the cell (pw.x ``relax``/``vc-relax``) and return the relaxed structure."""
    wd = Path(workdir) / "relax"
    wd.mkdir(parents=True, exist_ok=True)
    relax = generator.get_relax_input(structure, calculation)
    run_step("pw", relax, "relax", wd)
    return relaxed_structure(wd / "relax.out")


def relaxed_structure(output: Path) -> Structure:
    """Final cell and positions of a pw.x relax/vc-relax output (ASE's reader)."""
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        atoms = read(str(output), format="espresso-out", index=-1)
    except Exception as exc:  # ASE raises various errors on truncated files
        raise QEError("pw.x", f"cannot read the relaxed structure from {output}: {exc}") from exc
    assert not isinstance(atoms, list)  # an integer index reads one image
    return AseAtomsAdaptor.get_structure(atoms)


@job(name="scf")
def scf_job(structure: Structure, generator: ElphInputGenerator, workdir: str) -> dict[str, Any]:
    """pw.x on the dense grid (``la2F``), metallicity check, then pw.x on the k grid.

    Returns ``is_metal`` False (and no second run) for an insulator.
    """
    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    input_set.write(wd)
    walls: dict[str, float] = {}
    dense = run_step("pw", input_set.scf_dense, "scf_dense", wd)
    walls["scf_dense"] = dense["wall_time_s"]
    gap = read_marker(wd, "gap")
    if gap is None:
        save, _ = _paths(input_set, wd)
        g = band_gap_from_xml(save)
        gap = {"gap_eV": g.gap_eV, "is_metal": g.is_metal}
        write_marker(wd, "gap", gap)
    if not gap["is_metal"]:
        pw = parse_pw_output(wd / "scf_dense.out")
        return {"is_metal": False, "gap_eV": gap["gap_eV"], "wall_times_s": walls,
                "scf": _scf_summary(pw, gap).model_dump(), "qe_version": pw.qe_version}
    coarse = run_step("pw", input_set.scf, "scf", wd)
    walls["scf"] = coarse["wall_time_s"]
    pw = parse_pw_output(wd / "scf.out")
    return {"is_metal": True, "gap_eV": gap["gap_eV"], "wall_times_s": walls,
            "scf": _scf_summary(pw, gap).model_dump(), "qe_version": pw.qe_version,
            "fixes": dense["fixes"] + coarse["fixes"]}


def _scf_summary(pw: Any, gap: dict[str, Any]) -> ScfSummary:
    return ScfSummary(energy_eV=pw.total_energy_eV, fermi_energy_eV=pw.fermi_energy_eV,
                      pressure_kbar=pw.pressure_kbar, band_gap_eV=gap["gap_eV"],
                      is_metal=gap["is_metal"], n_iterations=pw.n_scf_iterations)


def _ph_recover(wd: Path, step: str, input_set: ElphInputSet) -> bool:
    """Whether an earlier, unfinished attempt left ph.x state (``_ph*``) behind."""
    outdir = wd / str(input_set.ph.get("outdir", "./tmp"))
    return read_marker(wd, step) is None and (wd / f"{step}.out").is_file() and any(
        outdir.glob("_ph*"))


def ph_resume_q(wd: Path, step: str, input_set: ElphInputSet) -> int | None:
    """First irreducible q point an interrupted ph.x run has not finished (None: no restart).

    QE 6.7's ``recover=.true.`` is unreliable for electron-phonon runs: after a
    ``max_seconds`` stop inside a q point the recovered run gives the right
    phonon frequencies but wrong el-ph matrix elements for the q points after it
    (λ off by a few %), and after a run killed by a signal it cannot read its
    state at all.  A q point whose dynamical matrix and ``elph_dir`` files are
    on disk, each written to its last line (:mod:`workflows.qe.ph_files`), is final,
    so the restart runs ph.x afresh (``recover=.false.``) from the first other q point
    (``start_q``), as the per-q fan-out does.

    Only those files decide: ``<step>.in`` is written again with the flow's inputs at every
    start, ``<step>.out`` by every ph.x launch and the ``_ph*`` state is removed before it,
    so none of them says where a run killed at any moment had got to.

    Parameters
    ----------
    wd
        Calculation directory (holds ``<step>.out`` of the last attempt).
    step
        Step name (``ph``).
    input_set
        The calculation's inputs (``fildyn``, el-ph settings).

    Returns
    -------
    int or None
        None when there is nothing to resume (first attempt, or finished); the q count + 1
        when every q point is on disk (ph.x finished, its job did not record it).
    """
    if read_marker(wd, step) is not None or not (wd / f"{step}.out").is_file():
        return None
    return first_q_not_on_disk(wd, str(input_set.ph.get("fildyn")), _ph_nsigma(input_set))[0]


def _ph_nsigma(input_set: ElphInputSet) -> int | None:
    """Broadenings of the el-ph files ph.x writes per q point (None: no el-ph)."""
    if not input_set.ph.get("electron_phonon"):
        return None
    return int(input_set.ph.get("el_ph_nsigma") or 10)


@job(name="ph")
def ph_job(scf: dict[str, Any], structure: Structure, generator: ElphInputGenerator,
           workdir: str) -> dict[str, Any]:
    """ph.x electron-phonon on the whole q grid in one run.

    A rerun after an interrupted attempt keeps the q points that attempt
    finished and runs ph.x from the first other one (see :func:`ph_resume_q`).
    """
    if not scf["is_metal"]:
        return {"skipped": "insulator"}
    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    start_q = ph_resume_q(wd, "ph", input_set)
    if start_q is not None:
        nq = q_list_count(wd / f"{input_set.ph.get('fildyn')}0")
        if nq is not None and start_q > nq:
            logger.info("ph: every irreducible q point is on disk (the stopped run had "
                        "finished), not rerun")
            write_marker(wd, "ph", {"wall_time_s": 0.0, "attempts": 0, "fixes": [],
                                    "finished_by": "an earlier, stopped run"})
            return {"wall_times_s": {"ph": 0.0}, "fixes": [], "resumed_at_q": start_q}
        outdir = wd / str(input_set.ph.get("outdir", "./tmp"))
        for stale in outdir.glob("_ph*"):
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("ph: resuming the interrupted run at irreducible q point %d", start_q)
    res = run_step("ph", input_set.ph_input(start_q=start_q if start_q and start_q > 1 else None),
                   "ph", wd)
    return {"wall_times_s": {"ph": res["wall_time_s"]}, "fixes": res["fixes"],
            "resumed_at_q": start_q}


def _irreducible_q_count(dyn0: Path) -> int:
    nq = q_list_count(dyn0)
    if nq is None:
        raise QEError("ph.x", f"cannot read the q-point count from {dyn0}")
    return nq


@job(name="ph_init")
def ph_fanout_job(scf: dict[str, Any], structure: Structure, generator: ElphInputGenerator,
                  workdir: str) -> Response | dict[str, Any]:
    """List the irreducible q points (ph.x ``only_init``) and replace itself by one job per q.

    The replacement flow ends with :func:`ph_merge_job`, whose output becomes this job's.
    """
    if not scf["is_metal"]:
        return {"skipped": "insulator"}
    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    init = input_set.ph_input()
    init.set("inputph", "only_init", True)
    init.set("inputph", "lqdir", True)  # ph.x requires it with only_init
    res = run_step("ph", init, "ph_init", wd)
    fildyn = str(input_set.ph.get("fildyn"))
    nq = _irreducible_q_count(wd / f"{fildyn}0")
    parent = getattr(CURRENT_JOB.job, "uuid", None)  # None: called outside a flow
    q_jobs = [ph_q_job(iq, structure, generator, workdir) for iq in range(1, nq + 1)]
    for j in q_jobs:
        j.name = f"ph_q{j.function_args[0]}"
        if parent:
            pin_uuid(j, parent)
    merge = ph_merge_job([j.output for j in q_jobs], nq, structure, generator, workdir,
                         res["wall_time_s"])
    if parent:
        pin_uuid(merge, parent)
    return Response(replace=Flow([*q_jobs, merge], output=merge.output, name="ph fan-out"))


@job(name="ph_q")
def ph_q_job(iq: int, structure: Structure, generator: ElphInputGenerator,
             workdir: str) -> dict[str, Any]:
    """ph.x for irreducible q point ``iq`` only, on a private copy of the scf outdir.

    A rerun after an interrupted attempt computes the q point again from the
    start (its stale ``_ph*`` state removed): QE 6.7's ``recover`` is not
    reliable for el-ph runs (see :func:`ph_resume_q`).
    """
    wd = Path(workdir)
    qdir = wd / f"ph_q{iq}"
    input_set = generator.get_input_set(structure)
    outdir = str(input_set.ph.get("outdir", "./tmp"))
    if read_marker(qdir, "ph") is None and not (qdir / outdir).exists():
        qdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(wd / outdir, qdir / outdir,
                        ignore=shutil.ignore_patterns("_ph*"), dirs_exist_ok=True)
    if _ph_recover(qdir, "ph", input_set):
        for stale in (qdir / outdir).glob("_ph*"):
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("ph_q%d: computing the interrupted q point again", iq)
    res = run_step("ph", input_set.ph_input(start_q=iq, last_q=iq), "ph", qdir)
    return {"iq": iq, "wall_time_s": res["wall_time_s"], "fixes": res["fixes"]}


@job(name="ph_merge")
def ph_merge_job(q_results: list[dict[str, Any]], nq: int, structure: Structure,
                 generator: ElphInputGenerator, workdir: str, init_wall_s: float) -> dict[str, Any]:
    """Collect the per-q dynamical matrices and ``elph_dir`` files into the main directory."""
    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    fildyn = str(input_set.ph.get("fildyn"))
    (wd / "elph_dir").mkdir(exist_ok=True)
    for iq in range(1, nq + 1):
        qdir = wd / f"ph_q{iq}"
        dyn = qdir / f"{fildyn}{iq}"
        if not dyn.is_file():
            raise QEError("ph.x", f"q point {iq}: {dyn} is missing; rerun the flow", str(qdir))
        shutil.copy2(dyn, wd / dyn.name)
        for f in (qdir / "elph_dir").glob(f"*.{iq}"):
            shutil.copy2(f, wd / "elph_dir" / f.name)
    write_marker(wd, "ph", {"wall_time_s": init_wall_s + sum(r["wall_time_s"]
                                                              for r in q_results),
                            "fan_out": nq})
    walls = {f"ph_q{r['iq']}": r["wall_time_s"] for r in q_results}
    walls["ph_init"] = init_wall_s
    return {"wall_times_s": walls, "fixes": [f for r in q_results for f in r["fixes"]]}


@job(name="q2r_matdyn")
def matdyn_job(ph: dict[str, Any], structure: Structure, generator: ElphInputGenerator,
               workdir: str, keep_scratch: bool = False) -> dict[str, Any]:
    """q2r.x then matdyn.x (DOS + α²F), retrying matdyn's ASR when it writes NaN."""
    if ph.get("skipped"):
        return {"skipped": ph["skipped"]}
    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    walls = {"q2r": run_step("q2r", input_set.q2r, "q2r", wd)["wall_time_s"]}
    done = read_marker(wd, "matdyn_asr")
    asr_used = done["asr"] if done else None
    errors = []
    for asr in ([] if done else input_set.matdyn_asr_fallback):
        step = f"matdyn_{asr}"
        walls[step] = run_step("matdyn", input_set.matdyn_input(asr), step, wd)["wall_time_s"]
        try:
            parse_a2f_dos_files(wd)
            parse_phonon_dos(wd / str(input_set.matdyn.get("fldos")))
        except ValueError as exc:
            errors.append(f"asr={asr}: {exc}")
            logger.warning("matdyn asr=%s gave non-finite values; trying the next ASR", asr)
            continue
        asr_used = asr
        write_marker(wd, "matdyn_asr", {"asr": asr})
        break
    if asr_used is None:
        raise QEError("matdyn.x", "non-finite α²F/DOS with every ASR: " + "; ".join(errors),
                      str(wd))
    removed = [] if keep_scratch else remove_scratch(
        wd, str(input_set.scf.get("outdir", "./tmp")), str(input_set.scf.get("prefix", "bete")))
    return {"wall_times_s": walls, "matdyn_asr": asr_used, "scratch_removed": removed}


@job(name="elph_task_document", data=list(ELPH_BLOB_FIELDS))
def task_document_job(structure: Structure, generator: ElphInputGenerator, workdir: str,
                      scf: dict[str, Any], ph: dict[str, Any] | None,
                      matdyn: dict[str, Any] | None, source_id: str | None,
                      input_hash: str,
                      reference_sigma_Ry: float = DEFAULT_REFERENCE_SIGMA_RY,
                      mu_star: float = DEFAULT_MU_STAR,
                      stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV,
                      job_uuids: dict[str, str] | None = None) -> Any:
    """Parse the finished calculation into an :class:`ElphTaskDocument`."""
    wd = Path(workdir)
    input_set = generator.get_input_set(structure)
    scf_summary = ScfSummary(**scf["scf"])
    walls = {**scf.get("wall_times_s", {}), **(ph or {}).get("wall_times_s", {}),
             **(matdyn or {}).get("wall_times_s", {})}
    common = {"wall_times_s": walls, "workdir": str(wd), "job_uuids": job_uuids or {}}
    if not scf["is_metal"]:
        return early_document(input_set, str(generator.preset), source_id, input_hash, "insulator",
                              f"band gap {scf['gap_eV']:.3f} eV at the Fermi level: no "
                              "electron-phonon run", scf_summary, scf.get("qe_version"),
                              overrides=dict(generator.overrides),
                              reference_sigma_Ry=reference_sigma_Ry, mu_star=mu_star, **common)
    doc = elph_document(wd, input_set, str(generator.preset), source_id, input_hash, scf_summary,
                        scf.get("qe_version"), (matdyn or {}).get("matdyn_asr", "crystal"),
                        reference_sigma_Ry=reference_sigma_Ry, mu_star=mu_star,
                        stability_threshold_meV=stability_threshold_meV,
                        overrides=dict(generator.overrides), **common)
    fixes = scf.get("fixes", []) + (ph or {}).get("fixes", [])
    if fixes:
        doc.warnings.extend(f"automatic retry: {f}" for f in fixes)
    return doc

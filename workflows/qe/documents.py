"""Build electron-phonon task documents from a finished calculation directory.

No QE runs and no file writing here: parse, compute (through
:mod:`workflows.common.physics`), validate.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from stores.constants import DEFAULT_REFERENCE_SIGMA_RY
from stores.protocol import ProtocolIdentity, directory_family_sha256, recipe_sha256
from stores.schemas import (
    A2FSpectrum,
    BroadeningResult,
    ElphStatus,
    ElphTaskDocument,
    PhononDos,
    PseudoRecord,
    ScfSummary,
)
from workflows.common.physics import (
    DEFAULT_MU_STAR,
    DEFAULT_STABILITY_THRESHOLD_MEV,
    lowest_frequency_meV,
    superconductivity,
)
from workflows.qe.matdyn_parsers import parse_a2f_dos_files, parse_lambda_file, parse_phonon_dos
from workflows.qe.qpoints import computed_q_points, q_point_lambdas, q_point_min_frequency_meV
from workflows.qe.sets import ElphInputSet

HIGH_PRESSURE_KBAR = 100.0
"""|pressure| above this (10 GPa) gets a warning: the cell is far from this functional's
equilibrium with these pseudopotentials."""


Q_SUM_MAX_DEVIATION = 0.25
"""λ of the interpolated α²F further than this (relative) from λ summed over the computed q
points gets a warning: the q grid does not resolve the phonons (bcc Nb, 4³ q: +47 %)."""

Q_SUM_MIN_GRID = 4
"""Below this many q points along a direction the q-point sum is itself too coarse to judge
the interpolation (2³ grids of the fast preset), so no such warning is given."""


def protocol_identity(input_set: ElphInputSet, overrides: dict[str, Any] | None,
                      qe_version: str | None,
                      reference_sigma_Ry: float = DEFAULT_REFERENCE_SIGMA_RY,
                      mu_star: float = DEFAULT_MU_STAR) -> ProtocolIdentity:
    """The protocol identity of a calculation (see :mod:`stores.protocol`).

    Raises
    ------
    ValueError
        When the family directory of the input set holds no UPF file.
    """
    params = input_set.parameters
    family = params.get("family") or {}
    return ProtocolIdentity(
        preset=str(params.get("preset")), recipe_sha256=recipe_sha256(params["recipe"]),
        overrides=dict(overrides or {}), pseudo_family=str(family.get("name")),
        pseudo_family_sha256=directory_family_sha256(family.get("directory") or
                                                     input_set.pseudo_dir),
        pseudopotentials={el: {"filename": p["filename"], "md5": p["md5"]}
                          for el, p in params.get("pseudopotentials", {}).items()},
        qe_version=qe_version, reference_sigma_Ry=round(float(reference_sigma_Ry), 6),
        mu_star=float(mu_star))


def _common_fields(input_set: ElphInputSet, preset: str, source_id: str | None,
                   input_hash: str, identity: ProtocolIdentity) -> dict[str, Any]:
    structure = input_set.structure
    comp = structure.composition
    params = input_set.parameters
    return {
        "formula": comp.reduced_formula,
        "nsites": len(structure),
        "elements": sorted(el.symbol for el in comp.elements),
        "chemsys": comp.chemical_system,
        "structure": structure.as_dict(),
        "source_id": source_id,
        "preset": preset,
        "parameters": params,
        "input_hash": input_hash,
        "pseudo_family": (params.get("family") or {}).get("directory"),
        "pseudopotentials": {
            el: PseudoRecord(filename=p["filename"], md5=p["md5"], functional=p.get("functional"))
            for el, p in params.get("pseudopotentials", {}).items()
        },
        "k_grid": list(input_set.k_grid),
        "k_grid_dense": list(input_set.k_grid_dense),
        "q_grid": list(input_set.q_grid),
        "ecutwfc_Ry": input_set.ecutwfc,
        "ecutrho_Ry": input_set.ecutrho,
        "provenance": {"host": platform.node(), "python": platform.python_version()},
        "protocol_identity": identity,
        "protocol_fingerprint": identity.fingerprint(),
    }


def scf_warnings(scf: ScfSummary | None) -> list[str]:
    """Warnings about the scf state (large pressure)."""
    if scf is None or scf.pressure_kbar is None:
        return []
    if abs(scf.pressure_kbar) > HIGH_PRESSURE_KBAR:
        return [
            f"pressure {scf.pressure_kbar:.1f} kbar: the cell is far from equilibrium for this "
            "functional and these pseudopotentials; relax it (relax=True) or treat λ with care"
        ]
    return []


def early_document(input_set: ElphInputSet, preset: str, source_id: str | None,
                   input_hash: str, status: ElphStatus, reason: str, scf: ScfSummary | None,
                   qe_version: str | None = None, overrides: dict[str, Any] | None = None,
                   reference_sigma_Ry: float = DEFAULT_REFERENCE_SIGMA_RY,
                   mu_star: float = DEFAULT_MU_STAR, **extra: Any) -> ElphTaskDocument:
    """A document for a calculation that ended before α²F (insulator, failure)."""
    identity = protocol_identity(input_set, overrides, qe_version, reference_sigma_Ry, mu_star)
    return ElphTaskDocument(
        status=status, status_reason=reason, scf=scf, qe_version=qe_version, mu_star=mu_star,
        warnings=scf_warnings(scf),
        **_common_fields(input_set, preset, source_id, input_hash, identity), **extra,
    )


def elph_document(directory: Path, input_set: ElphInputSet, preset: str,
                  source_id: str | None, input_hash: str, scf: ScfSummary | None,
                  qe_version: str | None, matdyn_asr: str,
                  reference_sigma_Ry: float = DEFAULT_REFERENCE_SIGMA_RY,
                  mu_star: float = DEFAULT_MU_STAR,
                  stability_threshold_meV: float = DEFAULT_STABILITY_THRESHOLD_MEV,
                  overrides: dict[str, Any] | None = None,
                  **extra: Any) -> ElphTaskDocument:
    """The full task document of a finished matdyn run in ``directory``.

    Raises
    ------
    ValueError
        When the ``a2F.dos*`` files are missing or hold non-finite values.
    """
    workdir = Path(directory)
    spectra = parse_a2f_dos_files(workdir)
    if not spectra:
        raise ValueError(f"no a2F.dos* files in {workdir}: matdyn.x did not run with la2F")
    lam_file = parse_lambda_file(workdir / "lambda") if (workdir / "lambda").is_file() else None
    sigma0 = float(input_set.ph.get("el_ph_sigma", 0.005))
    q_points = computed_q_points(workdir)
    lam_q = q_point_lambdas(q_points, input_set.q_grid)
    broadenings: list[BroadeningResult] = []
    a2f_spectra: list[A2FSpectrum] = []
    for spec in spectra:
        index = spec.index if spec.index is not None else len(broadenings) + 1
        sigma = sigma0 * index
        sc = superconductivity(spec.frequencies_meV, spec.a2f, mu_star=mu_star)
        row = lam_file.rows[index - 1] if lam_file and index - 1 < len(lam_file.rows) else None
        broadenings.append(BroadeningResult(
            sigma_Ry=round(row.sigma_Ry if row else sigma, 6), lambda_=sc.lambda_,
            omega_log_K=sc.omega_log_K, omega_2_K=sc.omega_2_K,
            tc_allen_dynes_K=sc.tc_allen_dynes_K, tc_mcmillan_K=sc.tc_mcmillan_K,
            qe_lambda=row.lambda_ if row else None, dos_ef=row.dos_ef if row else None,
            lambda_q_sum=lam_q.get(round(row.sigma_Ry if row else sigma, 6))))
        a2f_spectra.append(A2FSpectrum(sigma_Ry=broadenings[-1].sigma_Ry,
                                       frequencies_meV=spec.frequencies_meV.tolist(),
                                       a2f=spec.a2f.tolist()))
    ref = min(broadenings, key=lambda b: abs(b.sigma_Ry - reference_sigma_Ry))
    identity = protocol_identity(input_set, overrides, qe_version, ref.sigma_Ry, mu_star)
    fldos = input_set.matdyn.get("fldos") or "matdyn.dos"
    dos = parse_phonon_dos(workdir / fldos)
    min_freq = lowest_frequency_meV(dos.frequencies_meV, dos.total)
    stable = bool(min_freq >= stability_threshold_meV)
    warnings = scf_warnings(scf)
    dense_check = _dense_mesh_min_frequency(workdir, input_set)
    dense_min = None if isinstance(dense_check, str) else dense_check
    if isinstance(dense_check, str):
        warnings.append(dense_check)
    q_min = q_point_min_frequency_meV(q_points)
    warnings += _q_sum_warnings(ref, input_set.q_grid)
    if not stable:
        warnings.append(f"dynamically unstable: phonon DOS weight down to {min_freq:.2f} meV "
                        f"(threshold {stability_threshold_meV} meV)")
        if q_min is not None and q_min >= stability_threshold_meV:
            warnings.append(
                f"the imaginary modes lie only between the computed q points (lowest frequency "
                f"at them {q_min:.2f} meV): most likely a Fourier-interpolation artefact of the "
                f"{'x'.join(map(str, input_set.q_grid))} q grid; rerun with a denser q_grid "
                "before discarding the structure or trusting λ")
    return ElphTaskDocument(
        status="completed" if stable else "unstable",
        status_reason=None if stable else "imaginary phonon frequencies",
        scf=scf, qe_version=qe_version, mu_star=mu_star,
        reference_sigma_Ry=ref.sigma_Ry, lambda_=ref.lambda_, lambda_q_sum=ref.lambda_q_sum,
        omega_log_K=ref.omega_log_K,
        omega_2_K=ref.omega_2_K, tc_allen_dynes_K=ref.tc_allen_dynes_K,
        tc_mcmillan_K=ref.tc_mcmillan_K, broadenings=broadenings, a2f_spectra=a2f_spectra,
        phdos=PhononDos(frequencies_meV=dos.frequencies_meV.tolist(), total=dos.total.tolist(),
                        site_dos=np.atleast_2d(dos.per_site).tolist()),
        matdyn_asr=matdyn_asr, min_frequency_meV=min_freq,
        dense_mesh_min_frequency_meV=dense_min, q_point_min_frequency_meV=q_min,
        stability_threshold_meV=stability_threshold_meV, dynamically_stable=stable,
        warnings=warnings,
        **_common_fields(input_set, preset, source_id, input_hash, identity), **extra,
    )


def _q_sum_warnings(ref: BroadeningResult, q_grid: list[int]) -> list[str]:
    """A warning when λ of the interpolated α²F and the q-point sum disagree (dense q grids)."""
    lam_q = ref.lambda_q_sum
    if lam_q is None or lam_q <= 0 or min(q_grid) < Q_SUM_MIN_GRID:
        return []
    deviation = ref.lambda_ / lam_q - 1.0
    if abs(deviation) <= Q_SUM_MAX_DEVIATION:
        return []
    return [f"λ of the interpolated α²F ({ref.lambda_:.3f}) is {deviation:+.0%} off λ summed "
            f"over the computed q points ({lam_q:.3f}) at σ = {ref.sigma_Ry} Ry: the "
            f"{'x'.join(map(str, q_grid))} q grid does not resolve the phonons (soft modes "
            "between the q points); rerun with a denser q_grid before trusting λ and ω_log"]


def _dense_mesh_min_frequency(workdir: Path, input_set: ElphInputSet) -> float | str:
    """Lowest frequency on a dense mesh from the q2r.x force constants (phonopy), or a warning."""
    from workflows.qe.phonopy_tools import load_q2r_phonopy, stability_check

    fc = workdir / str(input_set.q2r.get("flfrc"))
    masses = input_set.parameters.get("masses_amu") or {}
    try:
        phonon = load_q2r_phonopy(fc, input_set.structure,
                                  masses=[masses[s.specie.symbol] for s in input_set.structure]
                                  if masses else None)
        return stability_check(phonon).min_frequency_meV
    except Exception as exc:  # an independent check: never lose the document over it
        return f"phonopy could not read {fc.name} for the dense-mesh stability check: {exc}"

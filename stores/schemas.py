"""Document schemas shared by the flows (which build them) and the stores (which query them).

Pure data models: no parsing, no file I/O.  Every document carries ``doc_type``
and ``schema_version``; units are in the field names or the descriptions.
Large arrays (α²F per broadening, phonon DOS) live in fields that the jobs route
to the JobStore's ``data`` blob store (see ``ELPH_BLOB_FIELDS``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

from stores.constants import DEFAULT_MU_STAR, DEFAULT_STABILITY_THRESHOLD_MEV
from stores.protocol import LEGACY_PRESET_FIELD, ProtocolIdentity

ELPH_SCHEMA_VERSION = "2.0"
"""2.0: the preset name moved from ``protocol`` to ``preset`` (documents of 1.0 are read
through :func:`stores.protocol.with_preset_field` and :data:`PRESET_ALIASES`)."""
ELPH_DOC_TYPE: Literal["elph_task"] = "elph_task"
ELPH_BLOB_FIELDS = ("a2f_spectra", "phdos")
"""Output fields of the task document stored in the ``data`` blob store."""

ElphStatus = Literal["completed", "unstable", "insulator", "failed"]


PRESET_ALIASES = AliasChoices("preset", LEGACY_PRESET_FIELD)
"""Where a document's preset name is read from: ``preset``, or the 1.0 field."""


def preset_field(description: str, optional: bool = False) -> Any:
    """The ``preset`` field of a document (read from a 1.0 document's ``protocol`` too)."""
    if optional:
        return Field(None, validation_alias=PRESET_ALIASES, description=description)
    return Field(validation_alias=PRESET_ALIASES, description=description)


def utcnow() -> datetime:
    """Timezone-aware current time (UTC)."""
    return datetime.now(timezone.utc)


class PseudoRecord(BaseModel):
    """One pseudopotential file used in a calculation."""

    filename: str = Field(description="UPF file name.")
    md5: str = Field(description="MD5 checksum of the file.")
    functional: str | None = Field(None, description="Exchange-correlation functional.")


class ScfSummary(BaseModel):
    """Results of the scf run on the el-ph k grid."""

    energy_eV: float | None = Field(None, description="Total energy (eV).")
    fermi_energy_eV: float | None = Field(None, description="Fermi energy (eV).")
    pressure_kbar: float | None = Field(None, description="Pressure from the stress (kbar).")
    band_gap_eV: float | None = Field(None, description="Gap around E_F (eV); 0 for metals.")
    is_metal: bool | None = Field(None, description="Bands cross the Fermi level.")
    n_iterations: int | None = Field(None, description="scf iterations to convergence.")


class BroadeningResult(BaseModel):
    """Moments and Tc of the α²F of one double-delta broadening σ."""

    sigma_Ry: float = Field(description="Gaussian broadening of the double-delta sum (Ry).")
    lambda_: float = Field(description="λ = 2∫α²F/ω dω.")
    omega_log_K: float = Field(description="ω_log (K).")
    omega_2_K: float = Field(description="ω₂ = [(2/λ)∫α²F ω dω]^½ (K).")
    tc_allen_dynes_K: float = Field(description="Allen–Dynes Tc with f1·f2 (K).")
    tc_mcmillan_K: float = Field(description="McMillan–Allen–Dynes Tc (no f1, f2) (K).")
    qe_lambda: float | None = Field(None, description="λ of QE's own `lambda` file.")
    dos_ef: float | None = Field(None,
                                  description="N(E_F) of the lambda file (states/spin/Ry).")
    lambda_q_sum: float | None = Field(
        None, description="λ summed over the q points ph.x computed, with their star weights "
        "(no interpolation): a q-convergence check on lambda_.")


class A2FSpectrum(BaseModel):
    """α²F(ω) on matdyn's grid for one broadening (blob)."""

    sigma_Ry: float
    frequencies_meV: list[float]
    a2f: list[float]


class PhononDos(BaseModel):
    """Phonon DOS from matdyn on the el-ph q grid (blob)."""

    frequencies_meV: list[float] = Field(description="Frequency grid (meV).")
    total: list[float] = Field(
        description="Total DOS in matdyn's units (states/cm⁻¹/cell), as in the fast-v1 records.")
    site_dos: list[list[float]] = Field(
        description="Per-site DOS (states/cm⁻¹), same order as the structure.")


PHDOS_DOC_TYPE: Literal["coarse_phdos"] = "coarse_phdos"
PHDOS_SCHEMA_VERSION = "2.0"
"""2.0: ``protocol`` (the preset name) renamed ``preset``."""


class PhononDosDocument(BaseModel):
    """Phonon-only DFPT run on a coarse q grid: the site-projected DOS CPD/FPD screening reads."""

    doc_type: Literal["coarse_phdos"] = PHDOS_DOC_TYPE
    schema_version: str = PHDOS_SCHEMA_VERSION
    input_hash: str = Field(description="sha256 of the phonon-only run (from the el-ph hash).")
    source_id: str | None = Field(None, description="User's identifier (file name, database id).")
    formula: str = Field(description="Reduced formula.")
    nsites: int = Field(description="Sites of the structure given.")
    structure: dict[str, Any] = Field(description="pymatgen dict of the computed cell.")
    preset: str = preset_field("Preset name (fast, standard, accurate, or a YAML path).")
    q_grid: list[int]
    k_grid: list[int]
    min_frequency_meV: float = Field(description="Lowest frequency with DOS weight.")
    dynamically_stable: bool
    stability_threshold_meV: float = Field(description="DOS weight below → unstable.")
    wall_times_s: dict[str, float] = Field(default_factory=dict, description="Per QE step (s).")
    workdir: str = Field(description="Where QE ran.")
    phdos: PhononDos = Field(description="Blob: phonon DOS and per-site DOS.")


class ElphTaskDocument(BaseModel):
    """Electron-phonon task document: one structure, one protocol."""

    doc_type: Literal["elph_task"] = ELPH_DOC_TYPE
    schema_version: str = ELPH_SCHEMA_VERSION
    status: ElphStatus = Field(description="completed, unstable, insulator or failed.")
    status_reason: str | None = Field(None, description="Why the status is not 'completed'.")
    formula: str = Field(description="Reduced formula.")
    nsites: int = Field(description="Sites in the computed (primitive) cell.")
    elements: list[str] = Field(description="Sorted element symbols.")
    chemsys: str = Field(description="Chemical system, e.g. 'Mg-Tl'.")
    structure: dict[str, Any] = Field(description="pymatgen dict of the computed cell.")
    source_id: str | None = Field(None, description="User's identifier (file name, database id).")
    preset: str = preset_field("Preset name (fast, standard, accurate, or a YAML path); the "
                               "protocol is ``protocol_identity``.")
    protocol_identity: ProtocolIdentity | None = Field(
        None, description="Everything that fixes the numbers: preset, recipe hash, overrides, "
        "pseudo family and files (md5), QE version, reference σ, μ* (stores.protocol).")
    protocol_fingerprint: str | None = Field(
        None, description="Short hash of the identity, the same for every structure of one "
        "protocol; training never mixes two (indexed).")
    parameters: dict[str, Any] = Field(description="Full input parameters of every QE step.")
    input_hash: str = Field(description="sha256 of structure + parameters + pseudopotentials.")
    pseudo_family: str | None = Field(None, description="Pseudopotential family name or path.")
    pseudopotentials: dict[str, PseudoRecord] = Field(description="Element → UPF file.")
    k_grid: list[int]
    k_grid_dense: list[int]
    q_grid: list[int]
    ecutwfc_Ry: float
    ecutrho_Ry: float
    qe_version: str | None = None
    scf: ScfSummary | None = None
    mu_star: float = Field(DEFAULT_MU_STAR, description="Coulomb pseudopotential used for Tc.")
    reference_sigma_Ry: float | None = Field(None, description="Broadening of the headline values.")
    lambda_: float | None = Field(None, description="λ at the reference broadening.")
    lambda_q_sum: float | None = Field(
        None, description="λ summed over the computed q points at the reference broadening "
        "(see BroadeningResult.lambda_q_sum).")
    omega_log_K: float | None = Field(None, description="ω_log at the reference broadening (K).")
    omega_2_K: float | None = Field(None, description="ω₂ at the reference broadening (K).")
    tc_allen_dynes_K: float | None = Field(None, description="Allen–Dynes Tc (f1·f2) (K).")
    tc_mcmillan_K: float | None = Field(None, description="McMillan–Allen–Dynes Tc (K).")
    broadenings: list[BroadeningResult] = Field(default_factory=list)
    a2f_spectra: list[A2FSpectrum] = Field(default_factory=list, description="Blob: α²F per σ.")
    phdos: PhononDos | None = Field(None, description="Blob: phonon DOS and per-site DOS.")
    matdyn_asr: str | None = Field(None, description="ASR matdyn used (NaN fallback).")
    min_frequency_meV: float | None = Field(None, description="Lowest frequency with DOS weight.")
    stability_threshold_meV: float = Field(DEFAULT_STABILITY_THRESHOLD_MEV,
                                           description="DOS weight below → unstable.")
    dense_mesh_min_frequency_meV: float | None = Field(
        None, description="Lowest frequency on a 20³ Γ-centred mesh from the q2r.x force "
        "constants (phonopy), an independent stability check (meV).")
    q_point_min_frequency_meV: float | None = Field(
        None, description="Lowest ph.x frequency at the computed q points, Γ's acoustic modes "
        "left out (meV): imaginary modes only in the DOS, not here, point to the q-grid "
        "interpolation.")
    dynamically_stable: bool | None = None
    warnings: list[str] = Field(default_factory=list)
    wall_times_s: dict[str, float] = Field(default_factory=dict, description="Per QE step (s).")
    job_uuids: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = Field(None, description="Where QE ran.")
    created_at: datetime = Field(default_factory=utcnow)
    provenance: dict[str, Any] = Field(default_factory=dict, description="Host, versions, command.")


class ModelFile(BaseModel):
    """One file of a stored ensemble (``ensemble.json``, ``member_XXX.pt|json``)."""

    name: str
    sha256: str
    size_bytes: int | None = None


class ModelDocument(BaseModel):
    """A trained BETE-NET ensemble."""

    doc_type: Literal["model"] = "model"
    schema_version: str = "1.0"
    model_id: str
    variant: str
    hyperparameters: dict[str, Any]
    n_members: int
    training_query: dict[str, Any] = Field(default_factory=dict)
    training_set_hash: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    path: str | None = Field(None, description="Directory holding the state_dict files.")
    created_at: datetime = Field(default_factory=utcnow)
    blob_uuid: str | None = Field(
        None, description="Key of the blob in the `data` store holding the ensemble's files "
        "(stores.models.put_ensemble); None for a folder-only record.")
    files: list[ModelFile] = Field(
        default_factory=list, description="The stored files: name, sha256, size (bytes).")
    versions: dict[str, Any] = Field(
        default_factory=dict, description="Package versions the ensemble was trained with.")
    format: str | None = Field(None, description="Ensemble manifest format.")


class ScreeningDocument(BaseModel):
    """A candidate ranked by an acquisition function."""

    doc_type: Literal["screening"] = "screening"
    schema_version: str = "1.0"
    candidate_id: str
    formula: str
    structure: dict[str, Any]
    model_id: str
    round: int | None = None
    acquisition: str
    score: float
    rank: int
    lambda_mean: float
    lambda_std: float
    omega_log_K_mean: float
    omega_log_K_std: float
    omega_2_K_mean: float
    omega_2_K_std: float
    tc_K_mean: float
    tc_K_std: float
    a2f_mean: list[float] = Field(default_factory=list)
    a2f_std: list[float] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    campaign: str | None = Field(None, description="Active-learning campaign name.")
    source: str | None = Field(None, description="Where the candidate was read from.")
    chemsys: str | None = Field(None, description="Chemical system, e.g. 'Mg-Tl'.")
    nsites: int | None = Field(None, description="Sites in the candidate cell.")
    prob_tc_above: float | None = Field(
        None, description="P(Tc > tc_threshold_K) under a normal law (ensemble mean, σ).")
    tc_threshold_K: float | None = Field(None, description="Threshold of prob_tc_above (K).")
    variant: str | None = Field(None, description="Model variant (cso, cpd, fpd).")
    selected: bool = Field(False, description="Chosen for DFPT verification (top-k).")
    verification: dict[str, Any] | None = Field(
        None, description="DFPT result next to the prediction: status, input_hash, "
        "lambda_computed, omega_log_K_computed, tc_K_computed, dynamically_stable, error.")
    prescreen: dict[str, Any] | None = Field(
        None, description="MLIP stability pre-screen before DFPT: potential, "
        "min_frequency_meV, threshold_meV, passed (False = not sent to DFPT), reason.")
    unverifiable: str | None = Field(
        None, description="Why DFPT cannot verify it with the chosen pseudopotential family "
        "or atom limit (not sent; screening itself checks neither).")


ROUND_SCHEMA_VERSION = "2.0"
"""2.0: ``protocol`` (the verification's preset name) renamed ``preset``."""


class ActiveLearningRound(BaseModel):
    """One train → screen → verify → ingest round."""

    doc_type: Literal["al_round"] = "al_round"
    schema_version: str = ROUND_SCHEMA_VERSION
    campaign: str = "default"
    round: int
    model_id: str | None = None
    candidates: list[str] = Field(default_factory=list)
    submitted: list[str] = Field(default_factory=list)
    verified: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    status: str = "started"
    created_at: datetime = Field(default_factory=utcnow)
    acquisition: str | None = Field(None, description="Acquisition function of the ranking.")
    n_screened: int = Field(0, description="Candidates the model ranked.")
    n_rejected: int = Field(0, description="Candidates left out (duplicates, no pseudo ...).")
    training_set_hash: str | None = Field(None, description="Hash of the model's training set.")
    n_training: int | None = Field(None, description="Rows of the model's training set.")
    training_ids: list[str] = Field(default_factory=list, description="Training-set row ids.")
    acquisitions: list[dict[str, Any]] = Field(
        default_factory=list, description="Top-k candidates: id, formula, score, predicted "
        "λ, ω_log (K), Tc (K) mean and σ, structure.")
    verification: list[dict[str, Any]] = Field(
        default_factory=list, description="Per acquired candidate: DFPT status, input hash, "
        "predicted and computed λ, ω_log (K), Tc (K).")
    preset: str | None = preset_field("DFPT preset of the verification.", optional=True)
    protocol_fingerprint: str | None = Field(
        None, description="Protocol fingerprint of the verification; rounds train only on "
        "rows of it (stores.protocol).")
    updated_at: datetime = Field(default_factory=utcnow)


MLIP_PHONON_DOC_TYPE: Literal["mlip_phonon"] = "mlip_phonon"


class MLIPPhononDocument(BaseModel):
    """Harmonic phonons of one structure from a universal interatomic potential (phonopy).

    Keyed by ``key`` = sha256 of the structure, the potential name and package version and
    the settings, so a structure is computed once per potential.  DOS values are in
    states/cm⁻¹ (per cell for ``total``, per site for ``site_dos``), the unit of matdyn and of
    the fast-v1 records, so the two plot and bin the same way.
    """

    doc_type: Literal["mlip_phonon"] = MLIP_PHONON_DOC_TYPE
    schema_version: str = "1.0"
    key: str = Field(description="sha256 of structure + potential + version + settings.")
    formula: str = Field(description="Reduced formula.")
    nsites: int = Field(description="Sites in the given cell (the DOS is projected on them).")
    elements: list[str] = Field(description="Sorted element symbols.")
    structure: dict[str, Any] = Field(description="pymatgen dict of the cell (not relaxed).")
    structure_hash: str = Field(description="sha256 of the cell (lattice, species, positions).")
    source_id: str | None = Field(None, description="File name or database id it was read as.")
    potential: str = Field(description="Registry name, e.g. sevennet-0.")
    potential_package: str = Field(description="Distribution holding the weights.")
    potential_version: str = Field(description="Its installed version.")
    settings: dict[str, Any] = Field(description="Displacement (Å), supercell minimum length "
                                     "(Å), mesh length (Å), DOS step (meV), symprec.")
    settings_hash: str = Field(description="sha256 of ``settings``.")
    supercell_matrix: list[list[int]] = Field(description="Supercell of the given cell.")
    n_supercell_atoms: int = Field(description="Atoms in the supercell.")
    n_displacements: int = Field(
        description="Supercells evaluated (displaced ones, plus the undisplaced one where "
        "settings.residual_forces found polar sites).")
    mesh: list[int] = Field(description="Γ-centred q mesh of the DOS and the lowest frequency.")
    min_frequency_meV: float = Field(
        description="Lowest frequency on the mesh (meV; negative = imaginary).")
    stability_threshold_meV: float = Field(DEFAULT_STABILITY_THRESHOLD_MEV,
                                           description="Below → dynamically unstable.")
    dynamically_stable: bool = Field(description="min_frequency_meV ≥ the threshold.")
    mean_log_frequency_meV: float = Field(
        description="exp of the DOS-weighted mean of ln ω over ω > 0 (meV).")
    mean_frequency_meV: float = Field(description="DOS-weighted mean of ω over ω > 0 (meV).")
    max_frequency_meV: float = Field(description="Highest frequency on the mesh (meV).")
    frequencies_meV: list[float] = Field(description="DOS frequency grid (meV).")
    total_dos: list[float] = Field(description="Total DOS (states/cm⁻¹ per cell).")
    site_dos: list[list[float]] = Field(description="Per-site DOS (states/cm⁻¹), (nsites, k).")
    site_dos_grid: list[list[float]] = Field(
        description="Per-site DOS on the model's 51-bin grid (0.25 … 100.25 meV), binned as "
        "the CPD/FPD input (workflows.common.grid.grid_values), shape (nsites, 51).")
    wall_s: float = Field(description="Wall time of the calculation (s), model load excluded.")
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


MLIP_FEATURES_DOC_TYPE: Literal["mlip_features"] = "mlip_features"


class MLIPFeatureDocument(BaseModel):
    """Per-atom features of one structure from a universal potential's last interaction layer.

    Stored beside the structure's :class:`MLIPPhononDocument` in the same store and keyed the
    same way (sha256 of the structure, the potential name and package version, and the
    settings, here the layer), so a structure is evaluated once per potential and reused by
    every model that takes these features (:mod:`workflows.mlip.features`).
    """

    doc_type: Literal["mlip_features"] = MLIP_FEATURES_DOC_TYPE
    schema_version: str = "1.0"
    key: str = Field(description="sha256 of structure + potential + version + settings.")
    formula: str = Field(description="Reduced formula.")
    nsites: int = Field(description="Sites of the cell (one feature row each, in site order).")
    structure_hash: str = Field(description="sha256 of the cell (lattice, species, positions).")
    source_id: str | None = Field(None, description="File name or database id it was read as.")
    potential: str = Field(description="Registry name, e.g. sevennet-l3i5.")
    potential_package: str = Field(description="Distribution holding the weights.")
    potential_version: str = Field(description="Its installed version.")
    settings: dict[str, Any] = Field(description="The layer the features are taken from.")
    atom_features: list[list[float]] = Field(
        description="(nsites, D) invariant scalars of every site after that layer.")
    wall_s: float = Field(description="Wall time of the evaluation (s), model load excluded.")
    created_at: datetime = Field(default_factory=utcnow)

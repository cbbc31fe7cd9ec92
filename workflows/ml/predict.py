"""Predict α²F(ω), λ, ω_log, ω₂ and Tc with uncertainty from a BETE-NET ensemble.

Every member predicts a spectrum on the model grid
(:data:`betenet_model.targets.GRID_MEV`); the moments and the Allen–Dynes Tc
are computed per member with :mod:`workflows.common.physics`, and reported as
mean ± standard deviation over the members (the paper's uncertainty).  The
mean spectrum and its per-bin σ come along.  A structure holding an element
that no training structure contained gets a warning in its result.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Element, Structure

from betenet_model.ensemble import Ensemble
from betenet_model.targets import model_grid
from betenet_model.variants import SITE_DOS_MLIP, get_variant
from workflows.common.physics import DEFAULT_MU_STAR, superconductivity
from workflows.ml.data import structure_sample
from workflows.ml.mlip_inputs import MLIPNeeds, mlip_inputs

logger = logging.getLogger(__name__)

PROPERTIES = ("lambda", "omega_log_K", "omega_2_K", "tc_K")
"""Per-member quantities; ``tc_K`` is Allen–Dynes with f1·f2 of the member's spectrum (an
ensemble with a Tc head reports the head's value beside it as ``tc_head_K``)."""


def default_model_dir() -> Path:
    """The ensemble shipped with the project (``betenet_model.pretrained.DEFAULT``)."""
    from betenet_model.pretrained import DEFAULT, pretrained_dir

    return pretrained_dir(DEFAULT)


def load_ensemble(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Ensemble:
    """Load an ensemble folder (default: the shipped one)."""
    return Ensemble.load(default_model_dir() if path is None else Path(path), device=device)


def spectrum_properties(spectra: np.ndarray, mu_star: float = DEFAULT_MU_STAR,
                        ) -> dict[str, np.ndarray]:
    """λ, ω_log, ω₂ (K) and Allen–Dynes Tc (K) of spectra on the model grid.

    Parameters
    ----------
    spectra : ndarray, shape (..., n_bins)
        α²F on the model grid of ``n_bins`` (:func:`betenet_model.targets.model_grid`).
    mu_star : float
        Coulomb pseudopotential.

    Returns
    -------
    dict of ndarray, shape (...)
        Keys :data:`PROPERTIES`.
    """
    arr = np.asarray(spectra, dtype=float)
    flat = arr.reshape(-1, arr.shape[-1])
    grid = model_grid(arr.shape[-1])
    out = {k: np.empty(flat.shape[0]) for k in PROPERTIES}
    for i, spec in enumerate(flat):
        sc = superconductivity(grid, spec, mu_star=mu_star)
        out["lambda"][i] = sc.lambda_
        out["omega_log_K"][i] = sc.omega_log_K
        out["omega_2_K"][i] = sc.omega_2_K
        out["tc_K"][i] = sc.tc_allen_dynes_K
    return {k: v.reshape(arr.shape[:-1]) for k, v in out.items()}


def member_properties(ensemble: Ensemble, samples: Sequence[Any],
                      mu_star: float = DEFAULT_MU_STAR,
                      ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every member's λ, ω_log, ω₂, Tc ``(M, n)`` for ``samples``, and their spectra ``(M, n, G)``.

    ``tc_K`` is the Allen–Dynes Tc of the member's spectrum, consistent with its λ and ω_log;
    with a Tc head, ``tc_head_K`` is the head's direct Tc as well.
    """
    spectra, head_tc = ensemble.predict(samples)
    props = spectrum_properties(spectra, mu_star)
    if head_tc is not None:
        props["tc_head_K"] = head_tc
    return props, spectra


def sigma_scale(ensemble: Ensemble, key: str) -> float:
    """Calibration factor of the member spread of ``key`` (1 when the manifest has none)."""
    scales = (ensemble.manifest.get("calibration") or {}).get("sigma_scale") or {}
    return float(scales.get(key, 1.0))


def member_std(values: np.ndarray) -> np.ndarray:
    """Standard deviation over members (axis 0; ddof 1, 0 for a single member)."""
    return values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1:])


@dataclass
class Prediction:
    """Ensemble prediction for one structure.

    Attributes
    ----------
    id, formula : str
    mean, std : dict
        Mean over the members of λ, ω_log (K), ω₂ (K), Tc (K), and the uncertainty: the
        standard deviation over the members times the ensemble's calibration factor
        (``ensemble.json`` → ``calibration``; 1 when it has none).
    members : dict
        Per-member values, each an array of shape (M,).
    a2f_mean, a2f_std : ndarray, shape (G,)
        Mean spectrum and per-bin standard deviation on :attr:`grid_meV`.
    grid_meV : ndarray, shape (G,)
    unknown_elements : list of str
        Elements absent from the training set.
    warnings : list of str
    """

    id: str
    formula: str
    mean: dict[str, float]
    std: dict[str, float]
    members: dict[str, np.ndarray] = field(repr=False)
    a2f_mean: np.ndarray = field(repr=False)
    a2f_std: np.ndarray = field(repr=False)
    grid_meV: np.ndarray = field(repr=False)
    unknown_elements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    calibrated: bool = False

    def row(self, spectra: bool = False) -> dict[str, Any]:
        """Flat dictionary for tables and JSON."""
        out: dict[str, Any] = {"id": self.id, "formula": self.formula}
        for key in PROPERTIES:
            out[key] = self.mean[key]
            out[f"{key}_std"] = self.std[key]
        if "tc_head_K" in self.mean:
            out["tc_head_K"] = self.mean["tc_head_K"]
            out["tc_head_K_std"] = self.std["tc_head_K"]
        out["sigma_calibrated"] = self.calibrated
        out["warnings"] = "; ".join(self.warnings) if self.warnings else ""
        if spectra:
            out["grid_meV"] = self.grid_meV.tolist()
            out["a2f_mean"] = self.a2f_mean.tolist()
            out["a2f_std"] = self.a2f_std.tolist()
        return out


def unknown_elements(structure: Structure, ensemble: Ensemble) -> list[str]:
    """Symbols of the structure's elements that no training structure contained."""
    seen = set(ensemble.elements_seen)
    return sorted({el.symbol for el in structure.composition.elements if el.Z not in seen},
                  key=lambda s: Element(s).Z)


def predict_structures(
    structures: Sequence[Structure],
    ensemble: Ensemble,
    *,
    ids: Sequence[str] | None = None,
    site_dos: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
    mu_star: float = DEFAULT_MU_STAR,
    mlip_store: Any = None,
    inputs: Sequence[dict[str, Any]] | None = None,
) -> list[Prediction]:
    """Ensemble predictions for structures.

    Parameters
    ----------
    structures : sequence of Structure
        Ordered cells (the model sees the cell as given).
    ensemble : Ensemble
    ids : sequence of str, optional
        Identifiers (default: the reduced formulas).
    site_dos : sequence of (frequencies_meV (k,), dos (n_sites, k)), optional
        Site-projected phonon DOS per structure; required by cpd/fpd ensembles.
    mu_star : float
        μ* of the Allen–Dynes Tc.
    mlip_store : JobStore, optional
        For an ensemble that takes atom features of a universal potential or the phonon DOS
        (``dos`` head): where they are reused from and stored (None: computed, not stored).
    inputs : sequence of dict, optional
        Those inputs already at hand (:func:`workflows.ml.mlip_inputs.mlip_inputs` rows).

    Returns
    -------
    list of Prediction

    Raises
    ------
    ValueError
        A structure whose MLIP inputs cannot be had (the reason, per structure).
    """
    ids = list(ids) if ids is not None else [s.composition.reduced_formula for s in structures]
    if len(ids) != len(structures):
        raise ValueError(f"{len(ids)} ids for {len(structures)} structures")
    dos_list = list(site_dos) if site_dos is not None else [None] * len(structures)
    if len(dos_list) != len(structures):
        raise ValueError(f"{len(dos_list)} site DOS entries for {len(structures)} structures")
    needs = MLIPNeeds.of_ensemble(ensemble)
    if inputs is None:
        inputs = mlip_inputs(list(zip(ids, structures, strict=True)), needs, mlip_store)
    failed = [f"{i}: {row['error']}" for i, row in zip(ids, inputs, strict=True)
              if "error" in row]
    if failed:
        raise ValueError(f"no {needs.describe()} for " + "; ".join(failed[:5]))
    samples = []
    for structure, ident, dos, extra in zip(structures, ids, dos_list, inputs, strict=True):
        freq, values = dos if dos is not None else (None, None)
        samples.append(structure_sample(structure, ident, freq, values, ensemble.variant,
                                        inputs=extra))
    props, spectra = member_properties(ensemble, samples, mu_star)    # (M, n), (M, n, G)
    scale = {k: sigma_scale(ensemble, k) for k in props}
    calibrated = bool((ensemble.manifest.get("calibration") or {}).get("sigma_scale"))
    out = []
    for j, (structure, ident) in enumerate(zip(structures, ids, strict=True)):
        unknown = unknown_elements(structure, ensemble)
        warnings = []
        if unknown:
            msg = (f"{', '.join(unknown)} not in the training set: the prediction for "
                   f"{structure.composition.reduced_formula} is an extrapolation")
            warnings.append(msg)
            logger.warning("%s: %s", ident, msg)
        members = {k: props[k][:, j].copy() for k in props}
        out.append(Prediction(
            id=str(ident),
            formula=structure.composition.reduced_formula,
            mean={k: float(v.mean()) for k, v in members.items()},
            std={k: scale[k] * (float(v.std(ddof=1)) if v.size > 1 else 0.0)
                 for k, v in members.items()},
            members=members,
            a2f_mean=spectra[:, j].mean(axis=0),
            a2f_std=spectra[:, j].std(axis=0, ddof=1) if len(spectra) > 1
            else np.zeros(spectra.shape[-1]),
            grid_meV=ensemble.grid_meV,
            unknown_elements=unknown,
            warnings=warnings,
            calibrated=calibrated,
        ))
    return out


def model_label(model: str | None, ensemble: Ensemble) -> str:
    """Which ensemble was used: where it came from, variant, members, training size.

    ``model`` is the ``--model`` value (None = the shipped ensemble).
    """
    from betenet_model.pretrained import DEFAULT

    where = model if model else f"shipped {DEFAULT}"
    n_train = len(ensemble.manifest.get("training_set", {}).get("ids") or [])
    return (f"{where} ({ensemble.variant}, {len(ensemble)} members, trained on {n_train} "
            "structures)")


def mlip_site_dos(structures: Sequence[Structure], ids: Sequence[str],
                  store_spec: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frequencies, site DOS) of each structure's MLIP phonons (mpd), via a store.

    ``store_spec`` names the store (None = the settings' store); a structure without a DOS
    raises ValueError naming it.
    """
    from workflows.ml.mlip_dos import mlip_documents, site_dos_arrays
    from workflows.ml.mlip_inputs import open_mlip_store

    store = open_mlip_store(store_spec)
    try:
        docs = mlip_documents(list(zip(ids, structures, strict=True)), store)
    finally:
        store.close()
    for ident, doc in zip(ids, docs, strict=True):
        if "error" in doc:
            raise ValueError(f"{ident}: no MLIP phonon DOS for the mpd model: {doc['error']}")
    return [site_dos_arrays(doc) for doc in docs]


def predict_files(paths: Sequence[str], ensemble: Ensemble, *, model: str | None = None,
                  phonon_store: str | None = None, mu_star: float = DEFAULT_MU_STAR,
                  say: Any = logger.info) -> list[Prediction]:
    """Predictions for structure files: what ``bete predict`` does with a loaded ensemble.

    Reads the files, gets the MLIP inputs the ensemble takes (from and into the store
    ``phonon_store`` names), predicts.

    ``model`` is where the ensemble came from (for the "model:" line ``say`` gets); each
    prediction's id is its file name.  Bad input raises ValueError (OSError for a store).
    """
    from workflows.ml.mlip_inputs import open_mlip_store
    from workflows.qe.structures import load_structure

    variant = get_variant(ensemble.variant)
    mpd = variant.site_dos == SITE_DOS_MLIP
    if variant.takes_site_dos and not mpd:
        raise ValueError(f"the {ensemble.variant} ensemble needs site-projected phonon DOS, "
                         "which `bete predict` cannot read; use "
                         "workflows.ml.predict.predict_structures")
    structures = [load_structure(name) for name in paths]
    ids = [Path(name).name for name in paths]
    say(f"model: {model_label(model, ensemble)}")
    dos = mlip_site_dos(structures, ids, phonon_store) if mpd else None
    needs = MLIPNeeds.of_ensemble(ensemble)
    mlip_store = None
    if needs:
        say(f"model inputs: {needs.describe()} (stored documents reused, missing ones "
            "computed and stored)")
        mlip_store = open_mlip_store(phonon_store)
    try:
        return predict_structures(structures, ensemble, ids=ids, mu_star=mu_star,
                                  site_dos=dos, mlip_store=mlip_store)
    finally:
        if mlip_store is not None:
            mlip_store.close()

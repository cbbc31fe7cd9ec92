"""jobflow jobs of the screening flow: chunked ensemble predictions, then one ranking.

:func:`predict_chunk_job` loads the ensemble and predicts one chunk of candidates (a
cluster runs the chunks in parallel); :func:`rank_job` scores every prediction with an
acquisition function, ranks them, writes one :class:`~stores.schemas.ScreeningDocument`
per candidate into the store the job runs against, and returns a summary with the top
of the ranking.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from jobflow import job
from pymatgen.core import Structure

from betenet_model.variants import get_variant
from stores.schemas import ScreeningDocument
from workflows.common.physics import DEFAULT_MU_STAR, HIT_TC_K
from workflows.screening.acquisition import acquisition_scores, probability_above, rank

logger = logging.getLogger(__name__)

SUMMARY_TOP = 200
"""Ranked documents returned in the rank job's output (all are written to the store)."""


def _structure(value: Any) -> Structure:
    """A Structure from a dict or a Structure (jobflow deserialises MSON dicts)."""
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def predict_chunk(candidates: Sequence[dict[str, Any]], model_dir: str | None,
                  mu_star: float = DEFAULT_MU_STAR,
                  site_dos: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Ensemble predictions (mean ± σ of λ, ω_log, ω₂, Tc, and the mean α²F) of a chunk.

    Parameters
    ----------
    candidates : sequence of dict
        :meth:`Candidate.as_dict` entries.
    model_dir : str, optional
        Ensemble folder (None: the shipped ensemble).
    mu_star : float
    site_dos : dict, optional
        Candidate id → ``{"frequencies_meV": [...], "site_dos": [[...]]}`` (cpd/fpd), and/or
        ``"atom_features"``, ``"phonon_dos"`` (models that take them; computed here, not
        stored, when missing).
    """
    from workflows.ml.mlip_inputs import MLIPNeeds
    from workflows.ml.predict import load_ensemble, predict_structures

    if not candidates:
        return []
    ensemble = load_ensemble(model_dir)
    structures = [_structure(c["structure"]) for c in candidates]
    dos = None
    if get_variant(ensemble.variant).takes_site_dos:
        dos = []
        for c in candidates:
            entry = (site_dos or {}).get(c["id"])
            if entry is None:
                raise ValueError(f"{c['id']}: the {ensemble.variant} model needs its site "
                                 "phonon DOS")
            dos.append((np.asarray(entry["frequencies_meV"]), np.asarray(entry["site_dos"])))
    inputs = None
    if MLIPNeeds.of_ensemble(ensemble):   # atom features / phonon DOS the screening gathered
        given = [(site_dos or {}).get(c["id"]) or {} for c in candidates]
        if all("error" not in g and ("atom_features" in g or "phonon_dos" in g) for g in given):
            inputs = [{k: np.asarray(g[k]) for k in ("atom_features", "phonon_dos") if k in g}
                      for g in given]
    preds = predict_structures(structures, ensemble, ids=[c["id"] for c in candidates],
                               site_dos=dos, mu_star=mu_star, inputs=inputs)
    rows = []
    for c, s, p in zip(candidates, structures, preds, strict=True):
        rows.append({
            "candidate_id": p.id, "formula": p.formula, "source": c.get("source"),
            "structure": s.as_dict(), "chemsys": s.composition.chemical_system,
            "nsites": len(s),
            "lambda_mean": p.mean["lambda"], "lambda_std": p.std["lambda"],
            "omega_log_K_mean": p.mean["omega_log_K"], "omega_log_K_std": p.std["omega_log_K"],
            "omega_2_K_mean": p.mean["omega_2_K"], "omega_2_K_std": p.std["omega_2_K"],
            "tc_K_mean": p.mean["tc_K"], "tc_K_std": p.std["tc_K"],
            "a2f_mean": [float(x) for x in p.a2f_mean], "a2f_std": [float(x) for x in p.a2f_std],
            "warnings": list(p.warnings), "variant": ensemble.variant,
        })
    return rows


@job(name="screen_predict", data=["predictions"])
def predict_chunk_job(candidates: list[dict[str, Any]], model_dir: str | None,
                      mu_star: float = DEFAULT_MU_STAR,
                      site_dos: dict[str, Any] | None = None) -> dict[str, Any]:
    """One chunk of predictions (see :func:`predict_chunk`); arrays go to the blob store."""
    return {"n": len(candidates),
            "predictions": predict_chunk(candidates, model_dir, mu_star, site_dos)}


def rank_predictions(predictions: Sequence[dict[str, Any]], *, acquisition: str = "mean",
                     model_id: str, kappa: float = 1.0, threshold_K: float = HIT_TC_K,
                     incumbent_K: float | None = None, max_per_chemsys: int | None = None,
                     round_number: int | None = None, campaign: str | None = None,
                     ) -> list[ScreeningDocument]:
    """Score and rank predictions into screening documents (rank 1 = acquire first).

    Candidates beyond the per-chemical-system cap get no rank and are not returned.
    """
    if not predictions:
        return []
    mean = np.array([p["tc_K_mean"] for p in predictions], dtype=float)
    std = np.array([p["tc_K_std"] for p in predictions], dtype=float)
    scores = acquisition_scores(mean, std, acquisition, kappa=kappa, threshold=threshold_K,
                                incumbent=incumbent_K)
    prob = probability_above(mean, std, threshold_K)
    order = rank(scores, mean=mean, groups=[p["chemsys"] for p in predictions],
                 max_per_group=max_per_chemsys)
    docs = []
    for position, i in enumerate(order, 1):
        p = dict(predictions[i])
        if isinstance(p.get("structure"), Structure):
            p["structure"] = p["structure"].as_dict()
        fields = {k: v for k, v in p.items() if k in ScreeningDocument.model_fields}
        docs.append(ScreeningDocument(
            **fields, model_id=model_id, round=round_number, campaign=campaign,
            acquisition=acquisition, score=float(scores[i]), rank=position,
            prob_tc_above=float(prob[i]), tc_threshold_K=threshold_K))
    return docs


@job(name="screen_rank")
def rank_job(chunks: list[dict[str, Any]], acquisition: str, model_id: str,
             kappa: float = 1.0, threshold_K: float = HIT_TC_K,
             incumbent_K: float | None = None, max_per_chemsys: int | None = None,
             round_number: int | None = None, campaign: str | None = None,
             write: bool = True) -> dict[str, Any]:
    """Rank every chunk's predictions; write the screening documents to the job's store.

    Returns
    -------
    dict
        ``n_screened``, ``n_ranked``, ``written``, ``model_id``, ``acquisition`` and
        ``ranked``: the first :data:`SUMMARY_TOP` documents (without spectra).
    """
    from jobflow import CURRENT_JOB

    predictions = [p for chunk in chunks for p in chunk["predictions"]]
    docs = rank_predictions(predictions, acquisition=acquisition, model_id=model_id,
                            kappa=kappa, threshold_K=threshold_K, incumbent_K=incumbent_K,
                            max_per_chemsys=max_per_chemsys, round_number=round_number,
                            campaign=campaign)
    written = 0
    store = getattr(CURRENT_JOB, "store", None)
    if write and store is not None:
        from stores.records import write_screening_documents

        written = write_screening_documents(store, docs)
    top = [d.model_dump(mode="json", exclude={"a2f_mean", "a2f_std"})
           for d in docs[:SUMMARY_TOP]]
    return {"n_screened": len(predictions), "n_ranked": len(docs), "written": written,
            "model_id": model_id, "acquisition": acquisition, "incumbent_K": incumbent_K,
            "ranked": top}

"""The screening flow: chunked predictions → ranking by an acquisition function.

:class:`ScreeningFlowMaker` makes a jobflow ``Flow`` (one prediction job per chunk of
``chunk_size`` candidates, then one ranking job) that runs the same here
(:func:`run_screening`, jobflow ``run_locally`` against the store) and on a cluster
(FireWorks: every chunk is its own Firework).

CPD/FPD models need each candidate's coarse (2×2×2 q-grid) site-projected phonon DOS.
:func:`site_dos_from_store` takes it from an electron-phonon task document of the same
structure or from a coarse phonon-only run (:mod:`workflows.screening.phonons`, which
``bete screen --compute-phonons`` runs for the candidates that lack one); otherwise a
candidate is rejected (``needs_phonon_dos``) with the cost of obtaining one in the reason.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobflow import Flow, Maker

from workflows.common.physics import DEFAULT_MU_STAR, HIT_TC_K
from workflows.qe.local import run_flow_locally
from workflows.screening.acquisition import ACQUISITIONS
from workflows.screening.candidates import Candidate, Rejection
from workflows.screening.jobs import predict_chunk_job, rank_job

logger = logging.getLogger(__name__)

PHONON_ONLY_COST = ("no coarse phonon DOS in the store: a 2x2x2 phonon-only DFPT run (pw.x "
                    "scf + ph.x without electron-phonon + q2r/matdyn), about half to two "
                    "thirds of a 'fast' el-ph run, makes one (`bete screen --compute-phonons`)")


def model_manifest(model_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``ensemble.json`` of a model folder (None: the shipped ensemble)."""
    from workflows.ml.predict import default_model_dir

    folder = Path(model_dir) if model_dir is not None else default_model_dir()
    path = folder / "ensemble.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no ensemble (ensemble.json is missing)")
    return json.loads(path.read_text())


def model_id_for(model_dir: str | os.PathLike[str] | None) -> str:
    """Stable model id: ``<variant>-<training-set hash[:12]>-m<members>-<config digest>``.

    The digest (6 hex digits of the sha256 of the manifest's ``config``, see
    :func:`stores.models.config_digest`) tells apart ensembles trained on the same
    rows with other options or seeds.  The same id keys the model in a store
    (``--model store:<id>``).
    """
    from stores.models import model_id_from_manifest

    return model_id_from_manifest(model_manifest(model_dir))


@dataclass
class ScreeningFlowMaker(Maker):
    """Chunked ensemble predictions, then a ranking by an acquisition function.

    Parameters
    ----------
    name
        Flow name.
    acquisition
        ``mean``, ``ucb``, ``pi`` or ``ei`` (see :mod:`workflows.screening.acquisition`).
    chunk_size
        Candidates per prediction job.
    kappa
        UCB weight.
    threshold_K
        PI threshold (K).
    incumbent_K
        EI incumbent (K); None = 0 (use :func:`records.best_verified_tc` of the store).
    max_per_chemsys
        Diversity cap: at most this many ranked candidates per chemical system.
    mu_star
        μ* of the predicted Tc.
    """

    name: str = "screening"
    acquisition: str = "mean"
    chunk_size: int = 500
    kappa: float = 1.0
    threshold_K: float = HIT_TC_K
    incumbent_K: float | None = None
    max_per_chemsys: int | None = None
    mu_star: float = DEFAULT_MU_STAR

    def make(self, candidates: Sequence[Candidate], model_dir: str | None = None,
             model_id: str | None = None, round_number: int | None = None,
             campaign: str | None = None, site_dos: dict[str, Any] | None = None) -> Flow:
        """The flow for these candidates; its output is the ranking summary.

        Raises
        ------
        ValueError
            Unknown acquisition or a chunk size below 1.
        """
        if self.acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {self.acquisition!r}; choose one of "
                             f"{', '.join(ACQUISITIONS)}")
        if int(self.chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        model_path = str(Path(model_dir).resolve()) if model_dir is not None else None
        mid = model_id or model_id_for(model_dir)
        entries = [c.as_dict() for c in candidates]
        jobs: list[Any] = []
        for start in range(0, len(entries), self.chunk_size):
            chunk = entries[start:start + self.chunk_size]
            dos = ({c["id"]: {k: v for k, v in site_dos[c["id"]].items() if k in INPUT_KEYS}
                    for c in chunk if c["id"] in site_dos} if site_dos else None)
            j = predict_chunk_job(chunk, model_path, self.mu_star, dos)
            j.name = f"screen_predict {start // self.chunk_size + 1}"
            jobs.append(j)
        ranking = rank_job([j.output for j in jobs], self.acquisition, mid, kappa=self.kappa,
                           threshold_K=self.threshold_K, incumbent_K=self.incumbent_K,
                           max_per_chemsys=self.max_per_chemsys, round_number=round_number,
                           campaign=campaign)
        ranking.config.expose_store = True   # it writes the screening documents
        jobs.append(ranking)
        for j in jobs:
            j.metadata.update({"model_id": mid, "acquisition": self.acquisition,
                               "round": round_number, "campaign": campaign})
        return Flow(jobs, output=ranking.output,
                    name=f"{self.name} {len(entries)} candidates ({self.acquisition})")


INPUT_KEYS = ("frequencies_meV", "site_dos", "atom_features", "phonon_dos")
"""Per-candidate model inputs a screening flow carries to its prediction jobs."""


def site_dos_from_store(candidates: Sequence[Candidate], store: Any,
                        ) -> tuple[dict[str, Any], list[Rejection]]:
    """Site-projected phonon DOS of candidates from matching documents of the store.

    Coarse phonon-only runs (:mod:`workflows.screening.phonons`) come first, then the
    phonon DOS of electron-phonon task documents.

    Returns
    -------
    dos : dict
        Candidate id → ``{"frequencies_meV", "site_dos", "structure"}``; predict with that
        ``structure`` (the computed cell, whose site order the DOS rows follow).
    rejected : list of Rejection
        ``needs_phonon_dos`` for candidates without a usable stored DOS.
    """
    from pymatgen.core import Structure

    from stores.queries import iter_elph_documents, iter_phonon_dos_documents
    from workflows.screening.candidates import _fit, _matcher

    matcher = _matcher()
    stored: dict[str, list[dict[str, Any]]] = {}
    for out in iter_phonon_dos_documents(store):
        if out.get("phdos"):
            stored.setdefault(out["formula"], []).append(out)
    for doc in iter_elph_documents(store, {"status": {"$in": ["completed", "unstable"]}},
                                   load=True):
        if doc.get("phdos"):
            stored.setdefault(doc["formula"], []).append(doc)
    found, rejected = {}, []
    for c in candidates:
        hit = None
        for doc in stored.get(c.formula, []):
            s = Structure.from_dict(doc["structure"])
            if _fit(matcher, c.structure, s):
                hit = doc
                break
        if hit is None:
            rejected.append(Rejection(c.id, c.source, "needs_phonon_dos", PHONON_ONLY_COST,
                                      c.formula))
            continue
        found[c.id] = {"frequencies_meV": hit["phdos"]["frequencies_meV"],
                       "site_dos": hit["phdos"]["site_dos"], "structure": hit["structure"]}
    return found, rejected


def run_screening(candidates: Sequence[Candidate], store: Any, maker: ScreeningFlowMaker,
                  model_dir: str | None = None, *, model_id: str | None = None,
                  round_number: int | None = None, campaign: str | None = None,
                  site_dos: dict[str, Any] | None = None, verbose: bool = False,
                  ) -> dict[str, Any]:
    """Run the screening flow here against ``store`` and return the ranking summary.

    The screening documents are written to the store by the ranking job; the summary
    (``n_screened``, ``ranked`` ...) is returned.
    """
    if not candidates:
        return {"n_screened": 0, "n_ranked": 0, "written": 0, "ranked": [],
                "model_id": model_id or model_id_for(model_dir),
                "acquisition": maker.acquisition}
    flow = maker.make(candidates, model_dir, model_id=model_id, round_number=round_number,
                      campaign=campaign, site_dos=site_dos)
    summary = run_flow_locally(flow, store, verbose)
    if summary is None:
        raise RuntimeError("the ranking job returned nothing")
    return summary

"""The screen and verify phases that ``bete screen`` and an active-learning round share.

:func:`screen_phase` reads and checks the candidates, finds the site phonon DOS a
DOS variant needs (computing the MLIP phonons of the ``mpd`` variant when missing), and
runs the screening flow (ranked screening documents in the store).  :func:`verify_phase`
runs a verifier on the acquired rows (the DFPT el-ph flow here, or a submission) and
marks each screening document with the computed values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from betenet_model.variants import get_variant
from stores import records as rec
from workflows.ml.mlip_dos import candidate_site_dos, uses_mlip_dos
from workflows.ml.mlip_inputs import MLIPNeeds, mlip_inputs
from workflows.screening.candidates import (
    CandidateSet,
    Rejection,
    read_candidates,
    screen_candidates,
)
from workflows.screening.flows import (
    ScreeningFlowMaker,
    model_manifest,
    run_screening,
    site_dos_from_store,
)

Say = Callable[[str], None]
Verifier = Callable[[str, Structure], Any]
"""``verifier(candidate_id, structure) -> ElphOutcome | None`` (None: not finished yet)."""
ComputePhonons = Callable[[list[Any]], None]
"""``compute(candidates)``: put a coarse phonon DOS of each candidate into the store."""

VERIFICATION_FIELDS = ("status", "input_hash", "dynamically_stable", "lambda_computed",
                       "omega_log_K_computed", "tc_K_computed", "error")
"""What a screening document keeps of its verification row."""


@dataclass
class ScreenOutcome:
    """What the screen phase found and ranked."""

    checked: CandidateSet
    summary: dict[str, Any]
    incumbent_K: float | None

    @property
    def ranked(self) -> list[dict[str, Any]]:
        """Ranked prediction rows, best first."""
        return list(self.summary["ranked"])


class NoCandidatesError(ValueError):
    """Every candidate was left out; the message lists the causes, one line each."""


def screen_phase(sources: Sequence[str], store: Any, model_dir: str | None,
                 maker: ScreeningFlowMaker,
                 *, model_id: str, protocol_fingerprint: str | None = None,
                 preset: str | None = None, round_number: int | None = None,
                 campaign: str | None = None, compute_phonons: ComputePhonons | None = None,
                 say: Say | None = None, label: str = "", verbose: bool = False,
                 ) -> ScreenOutcome:
    """Read, check and rank every valid candidate with the model; screening documents are stored.

    Parameters
    ----------
    sources
        Candidate sources (:func:`workflows.screening.candidates.read_candidates`).
    store
        A connected JobStore.
    model_dir, model_id
        The ensemble folder (None: the shipped one) and its id.
    maker
        Ranking options; its incumbent is the store's best verified Tc (of ``preset``).
    protocol_fingerprint
        The verification's protocol: a candidate the store holds a task document of this
        protocol for is left out as ``already_computed`` (None: of any protocol).  Nothing
        here checks what only DFPT needs (pseudopotentials, atom limit): see
        :class:`~workflows.screening.candidates.VerificationCheck`.
    round_number, campaign
        Recorded in the screening documents.
    say, label
        Progress lines (``label`` starts them, e.g. ``"round 2: "``).
    compute_phonons
        For a variant with a site-DOS input: computes the missing DOS (else those
        candidates are left out with the cost of one).

    Raises
    ------
    ValueError
        Unreadable candidate sources, bad ranking options.
    NoCandidatesError
        When no candidate is left to rank (the causes, grouped, in the message).
    """
    say = say or (lambda _m: None)
    found = read_candidates(list(sources), store=store)
    checked = screen_candidates(found, store=store, for_dfpt=False,
                                protocol_fingerprint=protocol_fingerprint)
    site_dos = None
    variant = model_manifest(model_dir).get("variant")
    if uses_mlip_dos(variant):  # mpd: MLIP phonon documents, computed when missing
        site_dos, failed = candidate_site_dos(checked.accepted, store)
        checked.rejected += [Rejection(c.id, c.source, "no_mlip_phonons", failed[c.id],
                                       c.formula) for c in checked.accepted if c.id in failed]
        checked.accepted = [c for c in checked.accepted if c.id in site_dos]
    elif get_variant(variant).takes_site_dos:
        site_dos, missing = site_dos_from_store(checked.accepted, store)
        if missing and compute_phonons is not None:
            compute_phonons([c for c in checked.accepted if c.id not in site_dos])
            site_dos, missing = site_dos_from_store(checked.accepted, store)
        checked.rejected += missing
        checked.accepted = [c for c in checked.accepted if c.id in site_dos]
        for c in checked.accepted:  # predict on the computed cell (site order of the DOS)
            c.structure = Structure.from_dict(site_dos[c.id]["structure"])
    needs = MLIPNeeds.of_manifest(model_manifest(model_dir))
    if needs:  # atom features / phonon DOS of a universal potential, computed when missing
        say(f"{label}model inputs: {needs.describe()} of {len(checked.accepted)} candidates "
            "(stored documents reused, missing ones computed and stored)")
        rows = mlip_inputs([(c.id, c.structure) for c in checked.accepted], needs, store,
                           say=say)
        checked.rejected += [Rejection(c.id, c.source, "no_mlip_inputs", row["error"],
                                       c.formula)
                             for c, row in zip(checked.accepted, rows, strict=True)
                             if "error" in row]
        site_dos = dict(site_dos or {})
        for c, row in zip(checked.accepted, rows, strict=True):
            if "error" not in row:
                site_dos[c.id] = {**site_dos.get(c.id, {}),
                                  **{k: np.asarray(v).tolist() for k, v in row.items()}}
        checked.accepted = [c for c, row in zip(checked.accepted, rows, strict=True)
                            if "error" not in row]
    say(f"{label}{len(checked.accepted)} candidates to screen, {len(checked.rejected)} "
        f"left out {checked.reasons() or ''}".rstrip())
    if not checked.accepted:
        raise NoCandidatesError(
            f"none of the {len(checked.rejected)} candidate(s) can be screened; left out, by "
            "cause:\n  " + "\n  ".join(checked.report()))
    incumbent = rec.best_verified_tc(store, preset)
    maker = dataclasses.replace(maker, incumbent_K=incumbent)
    summary = run_screening(checked.accepted, store, maker, model_dir, model_id=model_id,
                            round_number=round_number, campaign=campaign, site_dos=site_dos,
                            verbose=verbose)
    return ScreenOutcome(checked, summary, incumbent)


def verify_phase(acquired: Sequence[dict[str, Any]], verify: Verifier, store: Any,
                 screening: dict[str, Any], *, done: dict[str, dict[str, Any]] | None = None,
                 after_each: Callable[[list[dict[str, Any]]], None] | None = None,
                 ) -> list[dict[str, Any]]:
    """Verify each acquired row; returns its verification rows (predicted next to computed).

    Parameters
    ----------
    acquired
        Ranked rows (``candidate_id``, ``structure``, predicted means and σ).
    verify
        Runs (or submits) the DFPT el-ph flow of one structure.
    store
        Where the screening documents are.
    screening
        What identifies the screening documents to mark besides the candidate id
        (``model_id``, ``round``, ``campaign``, ...).
    done
        Candidate id → verification row already final (not verified again).
    after_each
        Called with the rows so far after each new verification, before its screening
        document is marked (an active-learning round records its progress there).
    """
    rows: list[dict[str, Any]] = []
    for acq in acquired:
        if done and acq["candidate_id"] in done:
            rows.append(done[acq["candidate_id"]])
            continue
        outcome = verify(acq["candidate_id"], Structure.from_dict(acq["structure"]))
        row = verification_row(acq, outcome)
        rows.append(row)
        if after_each is not None:
            after_each(rows)
        mark_screening_verified(store, {**screening, "candidate_id": acq["candidate_id"]}, row)
    return rows


def mark_screening_verified(store: Any, criteria: dict[str, Any], row: dict[str, Any]) -> None:
    """Attach a verification row to the newest screening document matching ``criteria``."""
    for sdoc in rec.iter_screening_documents(store, criteria):
        rec.update_screening_verification(store, sdoc, {k: row[k] for k in VERIFICATION_FIELDS})
        break


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def verification_row(acq: dict[str, Any], outcome: Any) -> dict[str, Any]:
    """Predicted next to computed values of one acquired candidate."""
    doc = (outcome.document if outcome is not None else None) or {}
    status = doc.get("status") or ("failed" if outcome is not None and outcome.error
                                   else "pending")
    return {
        "candidate_id": acq["candidate_id"], "formula": acq["formula"], "status": status,
        "input_hash": getattr(outcome, "input_hash", None),
        "reused": bool(getattr(outcome, "reused", False)),
        "dynamically_stable": doc.get("dynamically_stable"),
        "lambda_predicted": acq.get("lambda_mean"), "lambda_std": acq.get("lambda_std"),
        "lambda_computed": _finite(doc.get("lambda_")),
        "omega_log_K_predicted": acq.get("omega_log_K_mean"),
        "omega_log_K_computed": _finite(doc.get("omega_log_K")),
        "tc_K_predicted": acq.get("tc_K_mean"), "tc_K_std": acq.get("tc_K_std"),
        "tc_K_computed": _finite(doc.get("tc_allen_dynes_K")),
        "error": getattr(outcome, "error", None),
    }


def verification_fingerprint(maker: Any) -> str | None:
    """Protocol fingerprint of a verification maker, or None when its family cannot be read.

    With None, a structure computed with any protocol counts as computed.
    """
    from workflows.qe.errors import BeteInputError

    try:
        return str(maker.protocol_identity().fingerprint())
    except BeteInputError:
        return None


def elph_maker(preset: str, overrides: dict[str, Any] | None = None, pseudos: str | None = None,
               max_atoms: int | None = None, scratch_dir: str | None = None) -> Any:
    """The DFPT el-ph flow maker of the verification."""
    from workflows.qe.flows import ElphFlowMaker

    return ElphFlowMaker.from_preset(preset, overrides, pseudos, max_atoms,
                                     scratch_dir=scratch_dir)


def local_verifier(maker: Any, store: Any, say: Say, verbose: bool = False) -> Verifier:
    """Run the DFPT el-ph flow here (``run_elph``: stored results are reused)."""
    from workflows.qe.errors import BeteInputError
    from workflows.qe.local import ElphOutcome, run_elph

    def verify(candidate_id: str, structure: Structure) -> Any:
        try:
            return run_elph([(candidate_id, structure)], maker, store, reuse=True,
                            progress=say, keep_going=True, verbose=verbose)[0]
        except BeteInputError as exc:  # includes MissingPseudopotentialError
            return ElphOutcome(candidate_id, structure.composition.reduced_formula, "", False,
                               None, str(exc))

    return verify


def submitting_verifier(maker: Any, store: Any, submit: Callable[[Any], str],
                        say: Say) -> Verifier:
    """Report a stored result, else hand the DFPT flow to ``submit`` (it is then pending).

    ``submit(flow) -> line`` adds the flow to the workers' queue (FireWorks: a flow already
    there is not added again) and says what it did.
    """
    from stores.queries import find_elph_by_hash
    from workflows.qe.local import ElphOutcome

    def verify(candidate_id: str, structure: Structure) -> Any:
        input_set = maker.input_set(structure)
        key = maker.calculation_key(input_set)
        formula = input_set.structure.composition.reduced_formula
        stored = find_elph_by_hash(store, key)
        if stored is not None:
            return ElphOutcome(candidate_id, formula, key, True, stored)
        say(f"{candidate_id} ({formula}): {submit(maker.make(structure, source_id=candidate_id))}")
        return None

    return verify

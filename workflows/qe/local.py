"""Run flows here, against a JobStore: the one local runner, and the el-ph runs on it.

:func:`run_flow_locally` is the one wrapper of jobflow's ``run_locally``: every local run
(electron-phonon flows, phonon-only flows, screening flows) goes through it, so they share
how jobflow is called and how quiet it is.  Tests fake the DFPT runs by replacing it by
name here (``monkeypatch`` at ``workflows.qe.local.run_flow_locally``), which changes what
:func:`run_elph` calls and nothing else.

:func:`run_elph` runs electron-phonon flows, reusing what is stored.  Every structure is
validated (and its inputs generated) before the first QE run, so a missing pseudopotential or
a disordered cell stops the whole batch early.  A structure whose input hash already has a
final document in the store is not recomputed (unless ``reuse=False``); an interrupted
calculation resumes from its calculation directory (see :mod:`workflows.qe.steps`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jobflow import Flow, JobStore, run_locally
from pymatgen.core import Structure

from stores.queries import ensure_elph_indexes, find_elph_by_hash
from workflows.qe.flows import ElphFlowMaker

logger = logging.getLogger(__name__)


@contextmanager
def quiet_jobflow(verbose: bool) -> Iterator[None]:
    """Jobflow's run_locally logs every job at INFO; keep stderr for our progress lines."""
    log = logging.getLogger("jobflow")
    old = log.level
    if not verbose:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(old)


def run_flow_locally(flow: Flow, store: Any, verbose: bool = False) -> Any:
    """Run ``flow`` here against ``store`` (the first failure is raised).

    Parameters
    ----------
    flow
        The flow; its last job's output is the result.
    store
        A connected jobflow ``JobStore``; every job output lands there.
    verbose
        Keep jobflow's per-job INFO log lines.

    Returns
    -------
    Any
        The output of the flow's last job (its last response), or None if it returned none.
    """
    with quiet_jobflow(verbose):
        responses = run_locally(flow, store=store, raise_immediately=True,
                                root_dir=os.getcwd(), log=verbose)
    result = responses.get(flow.jobs[-1].uuid, {})
    return result[max(result)].output if result else None


@dataclass
class ElphOutcome:
    """What happened to one structure."""

    source_id: str | None
    formula: str
    input_hash: str
    reused: bool
    document: dict[str, Any] | None
    error: str | None = None


def run_elph(structures: Sequence[tuple[str | None, Structure]], maker: ElphFlowMaker,
             store: JobStore, reuse: bool = True,
             progress: Callable[[str], None] | None = None,
             keep_going: bool = False, verbose: bool = False,
             labels: Sequence[str] | None = None) -> list[ElphOutcome]:
    """Run (or reuse) the electron-phonon flow of every structure.

    Parameters
    ----------
    structures
        (source id, structure) pairs.
    maker
        The flow maker.
    store
        A connected JobStore; task documents land there (arrays in its ``data`` store).
    reuse
        Return a stored final document with the same input hash instead of recomputing.
    progress
        Called with one line per event (e.g. print to stderr).
    keep_going
        Go on with the next structure after a failed QE run (the error is in the outcome);
        otherwise the first failure is raised.
    labels
        Prefix of each structure's progress lines (default ``[n/N] formula (id, hash)``);
        a caller with its own counter (the campaign) passes its own.

    Raises
    ------
    BeteInputError, MissingPseudopotentialError
        Before any QE run, for the first structure that cannot be calculated.
    QEError
        A QE run failed (``keep_going=False``).
    """
    say = progress or (lambda _msg: None)
    ensure_elph_indexes(store)
    prepared = []
    for source_id, structure in structures:  # validate everything first
        input_set = maker.input_set(structure)
        prepared.append((source_id, structure, input_set, maker.calculation_key(input_set)))
    outcomes = []
    for n, (source_id, structure, input_set, key) in enumerate(prepared, 1):
        formula = input_set.structure.composition.reduced_formula
        label = (labels[n - 1] if labels is not None
                 else f"[{n}/{len(prepared)}] {formula} ({source_id or '-'}, {key[:10]})")
        stored = find_elph_by_hash(store, key) if reuse else None
        if stored is not None:
            say(f"{label}: already in the store ({stored['status']}), not recomputed")
            _say_warnings(say, label, stored)
            _say_analysis_differences(say, label, stored, maker)
            outcomes.append(ElphOutcome(source_id, formula, key, True, stored))
            continue
        say(f"{label}: running {maker.preset} DFPT el-ph in {maker.workdir(input_set, key)}")
        flow = maker.make(structure, source_id=source_id, input_set=input_set)
        try:
            last = run_flow_locally(flow, store, verbose)
        except Exception as exc:  # QEError and friends: report with QE's own line
            if not keep_going:
                raise
            say(f"{label}: FAILED: {exc}")
            outcomes.append(ElphOutcome(source_id, formula, key, False, None, str(exc)))
            continue
        doc = last.model_dump(mode="json") if last is not None else None
        status = doc["status"] if doc else "?"
        extra = (f": λ = {doc['lambda_']:.3f}, Tc = {doc['tc_allen_dynes_K']:.2f} K"
                 if doc and doc.get("lambda_") is not None else "")
        say(f"{label}: {status}{extra}")
        _say_warnings(say, label, doc)
        outcomes.append(ElphOutcome(source_id, formula, key, False, doc))
    return outcomes


def _say_warnings(say: Callable[[str], None], label: str, doc: dict | None) -> None:
    """Each warning of the document (pressure, stability, q convergence, retries) on stderr."""
    for warning in (doc or {}).get("warnings") or []:
        say(f"{label}: warning: {warning}")


def _say_analysis_differences(say: Callable[[str], None], label: str, doc: dict,
                              maker: ElphFlowMaker) -> None:
    """A reused document keeps the μ*, reference σ and stability threshold it was built with."""
    asked = {"mu_star": maker.mu_star, "reference_sigma_Ry": maker.reference_sigma_Ry,
             "stability_threshold_meV": maker.stability_threshold_meV}
    differ = [f"{key} {doc.get(key)} (asked {value})" for key, value in asked.items()
              if doc.get(key) is not None and abs(float(doc[key]) - value) > 1e-9]
    if differ:
        say(f"{label}: the stored document was analysed with {', '.join(differ)}; "
            "`bete query --mu-star` recomputes Tc, `bete dfpt run --no-reuse` (reuse=False) "
            "recomputes it")

"""A DFPT electron-phonon campaign: a structure set, cheapest first, unattended for hours.

Every structure is planned first (inputs generated, cost estimated from its atoms,
k and q points, bands and cutoff; reserved ids and unusable inputs classified).
Then, cheapest first, each calculation is

- *reused* when the store holds its final document (same input hash);
- *skipped* when it failed before (the failure ledger; ``retry_failed`` reruns it);
- *claimed* (a lease in the store's claim folder, :class:`stores.claims.ClaimBoard`),
  so several campaign processes on the same set share the work and never compute a
  structure twice; a structure another live process holds is left to it;
- run through :func:`workflows.qe.local.run_elph`: finished QE steps are not rerun
  (restart markers), so a campaign killed at any point (``kill -9`` included)
  continues where it stopped; QE processes a killed run left behind are stopped first;
- stopped cleanly (QE ``max_seconds``) at the wall-time budget or the per-structure
  limit.

Each outcome falls in one class (:data:`OUTCOME_CLASSES`); :func:`outcome_table`
counts them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import spglib
from jobflow import JobStore
from pymatgen.core import Structure

from stores.claims import ClaimBoard
from stores.datasets import RESERVED_BETE_NET_IDS
from stores.queries import ensure_elph_indexes, find_elph_by_hash
from workflows.qe.errors import BeteInputError, QEError
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_elph
from workflows.qe.run import stop_stray_qe
from workflows.qe.sets import ElphInputSet
from workflows.qe.steps import qe_deadline

logger = logging.getLogger(__name__)

COMPLETED = "completed stable"
UNSTABLE = "unstable"
INSULATOR = "not metallic"
TIMED_OUT = "timed out"
BUDGET_STOP = "stopped by the budget (resumes)"
NOT_STARTED = "not started (budget)"
ELSEWHERE = "running in another process"
INPUT_ERROR = "input error"
RESERVED = "reserved (never computed)"
FAILED_PREFIX = "failed: "
OUTCOME_CLASSES = (COMPLETED, UNSTABLE, INSULATOR, TIMED_OUT, BUDGET_STOP, NOT_STARTED,
                   ELSEWHERE, INPUT_ERROR, RESERVED)
"""Outcome classes besides ``failed: <QE error kind>``."""
STOP_KINDS = ("time_limit", "timeout")
"""QE error kinds of a run cut by a time limit (the budget, the per-structure limit)."""
MIN_START_S = 60.0
"""A structure is not started with less budget than this left."""
_STATUS_CLASS = {"completed": COMPLETED, "unstable": UNSTABLE, "insulator": INSULATOR}


@dataclass
class PlannedStructure:
    """One structure of the set, ready to run (or classified before running)."""

    source_id: str
    structure: Structure
    input_set: ElphInputSet | None = None
    key: str = ""
    cost: float = math.inf
    error: str | None = None

    @property
    def formula(self) -> str:
        """Reduced formula of the computed cell."""
        cell = self.input_set.structure if self.input_set is not None else self.structure
        return cell.composition.reduced_formula


@dataclass
class CampaignOutcome:
    """What happened to one structure."""

    source_id: str
    formula: str
    outcome: str
    key: str = ""
    new: bool = False
    wall_s: float = 0.0
    cost: float = 0.0
    message: str | None = None
    lambda_: float | None = None
    tc_K: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """A flat row for tables and JSON."""
        return {"source_id": self.source_id, "formula": self.formula, "outcome": self.outcome,
                "new": self.new, "wall_s": round(self.wall_s, 1), "cost": self.cost,
                "lambda": self.lambda_, "tc_allen_dynes_K": self.tc_K,
                "input_hash": self.key[:12], "message": self.message}


def estimated_cost(input_set: ElphInputSet) -> float:
    """Relative cost of a calculation (no unit; only the order matters).

    ph.x solves 3·atoms perturbations at each irreducible q point, over the k points of
    the grid that the little group of q leaves distinct, each with nbnd bands of
    volume·ecutwfc^1.5 plane waves.  Symmetry matters most: a cubic 2-atom cell has
    120 such (q, k) pairs under ``fast``, a low-symmetry one over a thousand.  On the
    shipped fast-v1 records the rank correlation with the measured wall time is 0.81
    (full grids without symmetry: -0.34; ``benchmarks/campaign_cost.py``).
    """
    structure = input_set.structure
    return float(3 * len(structure) * irreducible_qk_pairs(structure, input_set.q_grid,
                                                           input_set.k_grid)
                 * input_set.nbnd * structure.volume * input_set.ecutwfc ** 1.5)


def irreducible_qk_pairs(structure: Structure, q_grid: Sequence[int],
                         k_grid: Sequence[int]) -> int:
    """Σ over irreducible q points of the k points distinct under the little group of q.

    Γ-centred grids, time reversal on (non-magnetic), spglib's symmetry at 1e-5.
    """
    cell = (structure.lattice.matrix.tolist(), structure.frac_coords.tolist(),
            [site.specie.Z for site in structure])
    symmetry = spglib.get_symmetry(cell, symprec=1e-5)
    q_mesh = spglib.get_ir_reciprocal_mesh(list(q_grid), cell, is_shift=[0, 0, 0])
    if symmetry is None or q_mesh is None:   # no symmetry found: every point counts
        return math.prod(q_grid) * math.prod(k_grid)
    mapping, grid = q_mesh
    total = 0
    for index in np.unique(mapping):
        q = grid[index] / np.asarray(q_grid, dtype=float)
        k_mesh = spglib.get_stabilized_reciprocal_mesh(
            list(k_grid), symmetry["rotations"], is_shift=[0, 0, 0], is_time_reversal=True,
            qpoints=[q])
        total += len(np.unique(k_mesh[0])) if k_mesh is not None else math.prod(k_grid)
    return total


def reserved_id(source_id: str, reserved: Sequence[int]) -> bool:
    """Whether a source id (a bete-net index) is in the reserved list."""
    return source_id.isdigit() and int(source_id) in set(reserved)


def plan_campaign(structures: Sequence[tuple[str, Structure]], maker: ElphFlowMaker,
                  reserved: Sequence[int] = RESERVED_BETE_NET_IDS,
                  ) -> tuple[list[PlannedStructure], list[CampaignOutcome]]:
    """Inputs and cost of every structure, cheapest first; reserved and unusable ones apart.

    Returns
    -------
    planned, classified
        Structures to run (sorted by :func:`estimated_cost`), and outcomes of those
        never to run (reserved ids, input errors such as an element the family lacks).
    """
    planned, classified = [], []
    for source_id, structure in structures:
        if reserved_id(source_id, reserved):
            classified.append(CampaignOutcome(source_id, structure.composition.reduced_formula,
                                              RESERVED))
            continue
        item = PlannedStructure(source_id, structure)
        try:
            item.input_set = maker.input_set(structure)
        except BeteInputError as exc:
            classified.append(CampaignOutcome(source_id, item.formula, INPUT_ERROR,
                                              message=str(exc)))
            continue
        item.key = maker.calculation_key(item.input_set)
        item.cost = estimated_cost(item.input_set)
        planned.append(item)
    planned.sort(key=lambda p: (p.cost, p.source_id))
    return planned, classified


def _from_document(item: PlannedStructure, doc: dict[str, Any], new: bool,
                   wall_s: float) -> CampaignOutcome:
    return CampaignOutcome(
        item.source_id, item.formula, _STATUS_CLASS.get(doc.get("status", ""), "?"), item.key,
        new=new, wall_s=wall_s if new else float(sum((doc.get("wall_times_s") or {}).values())),
        cost=item.cost, lambda_=doc.get("lambda_"), tc_K=doc.get("tc_allen_dynes_K"))


def run_campaign(planned: Sequence[PlannedStructure], maker: ElphFlowMaker, store: JobStore,
                 board: ClaimBoard, *, budget_s: float | None = None,
                 structure_limit_s: float | None = None, retry_failed: bool = False,
                 progress: Callable[[str], None] | None = None,
                 verbose: bool = False) -> list[CampaignOutcome]:
    """Run the planned structures in order; returns one outcome per structure.

    Parameters
    ----------
    planned
        From :func:`plan_campaign` (cheapest first).
    maker
        The flow maker (the same one that planned).
    store
        Connected JobStore; documents land there.
    board
        Claims and failure ledger shared by every process of the campaign.
    budget_s
        Wall-time budget of this process (s); QE stops cleanly at its end, and the
        structures left are ``not started``.
    structure_limit_s
        Wall-time limit of one structure (s); one that reaches it is ``timed out`` and
        recorded as a failure (skipped next time unless ``retry_failed``).
    retry_failed
        Rerun structures the ledger says failed before.
    progress
        Called with one line per event.
    """
    say = progress or (lambda _msg: None)
    ensure_elph_indexes(store)
    start = time.time()
    deadline = start + budget_s if budget_s else None
    outcomes: list[CampaignOutcome] = []
    n = len(planned)
    for i, item in enumerate(planned, 1):
        label = f"campaign [{i}/{n}] {item.formula} ({item.source_id}, {item.key[:10]})"
        outcome = _one(item, maker, store, board, label, deadline, structure_limit_s,
                       retry_failed, say, verbose)
        outcomes.append(outcome)
        hours = (time.time() - start) / 3600
        left = f", {(deadline - time.time()) / 3600:.2f} h of budget left" if deadline else ""
        say(f"{label}: {outcome.outcome}{' (new)' if outcome.new else ''}; "
            f"{hours:.2f} h elapsed{left}")
    return outcomes


def _one(item: PlannedStructure, maker: ElphFlowMaker, store: JobStore, board: ClaimBoard,
         label: str, deadline: float | None, structure_limit_s: float | None,
         retry_failed: bool, say: Callable[[str], None], verbose: bool) -> CampaignOutcome:
    assert item.input_set is not None
    stored = find_elph_by_hash(store, item.key)
    if stored is not None:
        return _from_document(item, stored, False, 0.0)
    failure = board.read_failure(item.key)
    if failure is not None and not retry_failed:
        return CampaignOutcome(item.source_id, item.formula, _failure_class(failure["kind"]),
                               item.key, cost=item.cost, message=failure.get("message"),
                               wall_s=float(failure.get("wall_s") or 0.0))
    if deadline is not None and deadline - time.time() < MIN_START_S:
        return CampaignOutcome(item.source_id, item.formula, NOT_STARTED, item.key,
                               cost=item.cost)
    ok, holder = board.try_claim(item.key, label)
    if not ok:
        owner = holder.owner if holder else "?"
        return CampaignOutcome(item.source_id, item.formula, ELSEWHERE, item.key,
                               cost=item.cost, message=f"claimed by {owner}")
    began = time.time()
    try:
        stored = find_elph_by_hash(store, item.key)  # finished by another process meanwhile
        if stored is not None:
            return _from_document(item, stored, False, 0.0)
        workdir = maker.workdir(item.input_set, item.key)
        stray = stop_stray_qe(workdir) if workdir.is_dir() else []
        if stray:
            say(f"{label}: stopped QE processes {stray} a killed run left in {workdir}")
        limits = [t for t in (deadline, began + structure_limit_s if structure_limit_s
                              else None) if t is not None]
        try:
            with qe_deadline(min(limits) if limits else None):
                result = run_elph([(item.source_id, item.structure)], maker, store,
                                  progress=say, verbose=verbose, labels=[label])[0]
        except QEError as err:
            wall = time.time() - began
            budget_binding = deadline is not None and (
                structure_limit_s is None or deadline <= began + structure_limit_s)
            outcome, kind = classify_qe_error(err, budget_binding)
            if kind is not None:
                board.record_failure(item.key, kind, str(err), wall_s=wall,
                                     source_id=item.source_id, formula=item.formula)
            return CampaignOutcome(item.source_id, item.formula, outcome, item.key,
                                   True, wall, item.cost, str(err))
        except (BeteInputError, ValueError, OSError, RuntimeError) as exc:
            wall = time.time() - began
            kind = type(exc).__name__
            board.record_failure(item.key, kind, str(exc), wall_s=wall,
                                 source_id=item.source_id, formula=item.formula)
            return CampaignOutcome(item.source_id, item.formula, _failure_class(kind), item.key,
                                   True, wall, item.cost, str(exc))
        board.clear_failure(item.key)
        return _from_document(item, result.document or {}, not result.reused,
                              time.time() - began)
    finally:
        board.release(item.key)


def classify_qe_error(err: QEError, budget_binding: bool) -> tuple[str, str | None]:
    """Outcome class of a failed QE run, and the kind to record as a known failure.

    Parameters
    ----------
    err
        The error (``kind`` from :func:`workflows.qe.handlers.check_output`, or ``timeout``).
    budget_binding
        Whether the campaign's budget, not the per-structure limit, set the time limit.

    Returns
    -------
    outcome, kind
        ``kind`` None = not a failure (a clean stop at the budget, resumed next time).
    """
    kind = err.kind or "qe_error"
    if kind == "time_limit" and budget_binding:
        return BUDGET_STOP, None
    if kind in STOP_KINDS:
        return TIMED_OUT, "timed_out"
    return _failure_class(kind), kind


def _failure_class(kind: str) -> str:
    return TIMED_OUT if kind == "timed_out" else FAILED_PREFIX + kind


def outcome_table(outcomes: Sequence[CampaignOutcome]) -> list[dict[str, Any]]:
    """Counts per outcome class: structures, computed in this run, QE hours; then a total.

    ``attempted`` counts the structures that ran at some time (a document or a
    recorded failure): reserved, never-started and input-error ones are left out.
    """
    order = {c: i for i, c in enumerate(OUTCOME_CLASSES)}
    rows: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        row = rows.setdefault(o.outcome, {"outcome": o.outcome, "structures": 0,
                                          "new_this_run": 0, "hours": 0.0})
        row["structures"] += 1
        row["new_this_run"] += int(o.new)
        row["hours"] += o.wall_s / 3600
    table = sorted(rows.values(), key=lambda r: (order.get(r["outcome"], 3.5), r["outcome"]))
    not_attempted = (RESERVED, NOT_STARTED, INPUT_ERROR, ELSEWHERE)
    attempted = [r for r in table if r["outcome"] not in not_attempted]
    table.append({"outcome": "attempted (total)",
                  "structures": sum(r["structures"] for r in attempted),
                  "new_this_run": sum(r["new_this_run"] for r in attempted),
                  "hours": sum(r["hours"] for r in attempted)})
    for r in table:
        r["hours"] = round(r["hours"], 2)
    return table


@dataclass
class CampaignResult:
    """What :func:`campaign_from_paths` did: the plan, and the outcomes of a run."""

    planned: list[PlannedStructure]
    """Structures to run, cheapest first."""
    left_out: list[CampaignOutcome]
    """Structures not run: reserved ids, refused or unreadable cells."""
    outcomes: list[CampaignOutcome] | None = None
    """One per structure, the left-out ones last; None when only planned."""


def campaign_from_paths(
    paths: Sequence[Path], *, preset: str, overrides: dict[str, Any] | None = None,
    pseudo_family: str | None = None, scratch_dir: str | None = None,
    max_atoms: int | None = None, skip_ids: Sequence[int] = (), plan_only: bool = False,
    claims: Callable[[], Path] | None = None, store: Callable[[], JobStore] | None = None,
    lease_s: float = 900.0, budget_s: float | None = None,
    structure_limit_s: float | None = None, retry_failed: bool = False,
    progress: Callable[[str], None] | None = None, verbose: bool = False,
) -> CampaignResult:
    """What ``bete campaign`` does: read the structure files, plan them, run the plan.

    A file that cannot be read, or a refused cell, is an input-error outcome, not a stop.
    ``claims`` and ``store`` give the claim folder and the connected store (called only for
    a run, not for ``plan_only``; the store is closed here).  The other keywords are
    those of :meth:`ElphFlowMaker.from_preset` and :func:`run_campaign`; ``skip_ids`` adds
    to the reserved evaluation ids.  Failed and refused structures are reported through
    ``progress``.
    """
    from workflows.qe.structures import load_structure

    say = progress or (lambda _msg: None)
    structures, unreadable = [], []
    for path in paths:
        source_id = path.stem if path.suffix else path.name
        try:  # the shared structure check: refused cells are input errors, not a stop
            structures.append((source_id, load_structure(path)))
        except (ValueError, OSError) as exc:
            unreadable.append(CampaignOutcome(source_id, "?", INPUT_ERROR, message=str(exc)))
    maker = ElphFlowMaker.from_preset(preset=preset, overrides=overrides,
                                      pseudo_family=pseudo_family, scratch_dir=scratch_dir,
                                      max_atoms=max_atoms)
    reserved = sorted({*RESERVED_BETE_NET_IDS, *skip_ids})
    planned, left_out = plan_campaign(structures, maker, reserved)
    left_out += unreadable
    identity = maker.protocol_identity()
    say(f"campaign: {len(planned)} structures to run, cheapest first, protocol "
        f"{identity.fingerprint()} ({identity.label()}); {len(left_out)} left out "
        f"(reserved ids {reserved}, input errors)")
    if plan_only:
        return CampaignResult(planned, left_out)
    if claims is None or store is None:
        raise ValueError("a campaign run needs `claims` and `store` (or plan_only=True)")
    board = ClaimBoard(claims(), lease_s=lease_s)
    connected = store()
    try:
        outcomes = run_campaign(planned, maker, connected, board, budget_s=budget_s,
                                structure_limit_s=structure_limit_s, retry_failed=retry_failed,
                                progress=progress, verbose=verbose)
    finally:
        board.release_all()
        connected.close()
    outcomes += left_out
    for o in outcomes:
        if o.outcome.startswith("failed") or o.outcome == INPUT_ERROR:
            say(f"campaign: {o.source_id} {o.formula}: {o.outcome}: {o.message}")
    return CampaignResult(planned, left_out, outcomes)

"""MLIP stability pre-screen: candidates with clearly imaginary MLIP phonons skip DFPT.

Before a ranked candidate is sent to the DFPT el-ph flow, its MLIP phonons (computed once,
stored, see :mod:`workflows.mlip`) are checked: a lowest frequency below the threshold sends
the candidate's place to the next one in the ranking, and its screening document records
why.  A candidate the potential cannot treat (uncovered element, zero forces, ...) has no
MLIP verdict and goes to DFPT as before.  The default threshold comes from the confusion
matrix against DFPT stability in ``docs/mlip-phonons.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Structure

from stores import records as rec
from workflows.mlip.potentials import DEFAULT_POTENTIAL
from workflows.screening.candidates import Rejection, VerificationCheck

DEFAULT_PRESCREEN_THRESHOLD_MEV = -3.0
"""MLIP lowest frequency (meV) below which a candidate is not sent to DFPT."""


@dataclass(frozen=True)
class StabilityPrescreen:
    """Options of the pre-screen.

    Parameters
    ----------
    enabled
        False sends every selected candidate to DFPT.
    potential
        Registry name of the potential.
    threshold_meV
        Lowest MLIP frequency (meV) below which a candidate is skipped.
    """

    enabled: bool = True
    potential: str = DEFAULT_POTENTIAL
    threshold_meV: float = DEFAULT_PRESCREEN_THRESHOLD_MEV  # noqa: N815

    def verdict(self, structure: Structure, store: Any,
                candidate_id: str | None = None) -> dict[str, Any]:
        """``{potential, min_frequency_meV, threshold_meV, passed, reason, mlip_key}``."""
        from workflows.mlip.phonons import MLIPPhononError, PotentialError, mlip_phonon_document

        base = {"potential": self.potential, "threshold_meV": self.threshold_meV}
        try:
            doc = mlip_phonon_document(structure, self.potential, store, candidate_id)
        except (PotentialError, MLIPPhononError) as exc:
            return {**base, "min_frequency_meV": None, "passed": True, "mlip_key": None,
                    "reason": f"no MLIP verdict ({exc}); sent to DFPT"}
        low = float(doc["min_frequency_meV"])
        passed = low >= self.threshold_meV
        reason = (f"MLIP lowest frequency {low:.2f} meV ≥ {self.threshold_meV:g} meV"
                  if passed else f"clearly imaginary MLIP phonons ({self.potential}: lowest "
                  f"frequency {low:.2f} meV < {self.threshold_meV:g} meV); not sent to DFPT")
        return {**base, "min_frequency_meV": low, "passed": passed, "reason": reason,
                "mlip_key": doc["key"]}


def select_for_dfpt(ranked: Sequence[dict[str, Any]], top_k: int,
                    prescreen: StabilityPrescreen | None, store: Any,
                    screening: dict[str, Any],
                    say: Callable[[str], None] | None = None,
                    check: VerificationCheck | None = None) -> list[dict[str, Any]]:
    """The first ``top_k`` ranked rows that DFPT can verify and that pass the pre-screen.

    ``check`` (pseudopotential family, atom limit) leaves out rows the verification cannot
    run, each row's screening document (found by ``screening`` + its candidate id) and the
    row itself recording why (``unverifiable``); ``say`` then names them and a family that
    covers them.  Each pre-screened row gets the verdict in ``prescreen`` (the pre-screen
    off: every verifiable row passes).
    """
    say = say or (lambda _m: None)
    chosen: list[dict[str, Any]] = []
    unverifiable: list[Rejection] = []
    for row in ranked:
        if len(chosen) >= top_k:
            break
        structure = Structure.from_dict(row["structure"])
        problem = check.problem(row["candidate_id"], structure) if check else None
        if problem is not None:
            unverifiable.append(problem)
            row["unverifiable"] = problem.detail
            rec.update_screening_fields(store, {**screening, "candidate_id": row["candidate_id"]},
                                        {"unverifiable": problem.detail, "selected": False})
            continue
        if prescreen is None or not prescreen.enabled:
            chosen.append(row)
            continue
        verdict = prescreen.verdict(structure, store, row["candidate_id"])
        row["prescreen"] = verdict
        rec.update_screening_prescreen(store, {**screening, "candidate_id": row["candidate_id"]},
                                       verdict)
        if verdict["passed"]:
            chosen.append(row)
        else:
            say(f"{row['formula']} ({row['candidate_id']}): {verdict['reason']}")
    if unverifiable and check is not None:
        say(check.summary(unverifiable))
    return chosen

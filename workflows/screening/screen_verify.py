"""Screening and verification as one workflow: what ``bete screen`` and every round run.

:func:`screen_and_verify` reads, checks and ranks the candidates with an ensemble
(:func:`~workflows.screening.phases.screen_phase`), picks the top-k that DFPT can verify and
that pass the MLIP stability pre-screen (:func:`~workflows.screening.prescreen.select_for_dfpt`)
and verifies them (:func:`~workflows.screening.phases.verify_phase`): with the DFPT el-ph flow
here, or by handing each flow to ``submit`` (FireWorks) and reporting stored results only.
The command line parses into a :class:`ScreenRequest`, calls it and prints its result; an
active-learning round calls it with the round's model and records its progress through the
two hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workflows.screening import phases
from workflows.screening.candidates import VerificationCheck
from workflows.screening.flows import ScreeningFlowMaker, model_id_for
from workflows.screening.prescreen import StabilityPrescreen, select_for_dfpt

Say = Callable[[str], None]
Submit = Callable[[Any], str]
"""``submit(flow) -> line``: hands one DFPT flow to workers and says what it did."""


@dataclass
class Verification:
    """How acquired candidates are verified: the DFPT el-ph flow and the pre-screen.

    Attributes
    ----------
    preset, overrides, pseudos, max_atoms, scratch_dir
        The flow (:func:`workflows.screening.phases.elph_maker`); ``pseudos`` None: the
        settings' family, else Debian's LDA files.
    prescreen
        MLIP stability pre-screen of the acquired candidates (on by default).
    """

    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    pseudos: str | None = None
    max_atoms: int | None = None
    scratch_dir: str | None = None
    prescreen: StabilityPrescreen = field(default_factory=StabilityPrescreen)

    def maker(self) -> Any:
        """The DFPT el-ph flow maker."""
        return phases.elph_maker(self.preset, self.overrides, self.pseudos, self.max_atoms,
                                 self.scratch_dir)

    def family(self) -> Any:
        """The pseudopotential family; ValueError naming it when it cannot be read."""
        from workflows.qe.errors import BeteInputError
        from workflows.qe.pseudos import PseudoFamily, default_family

        try:
            return PseudoFamily.from_path(self.pseudos) if self.pseudos else default_family()
        except (BeteInputError, OSError) as exc:
            raise ValueError(f"pseudopotential family {self.pseudos or '(default)'}: {exc}"
                             ) from exc

    def check(self) -> VerificationCheck:
        """What DFPT needs of a candidate (family covers it, primitive cell within limit)."""
        return VerificationCheck(self.family(), self.max_atoms)


@dataclass
class ScreenRequest:
    """One screening, and the verification of its top-k.

    Attributes
    ----------
    candidates
        Candidate sources (:func:`workflows.screening.candidates.read_candidates`).
    model_dir
        Ensemble folder (None: the shipped ensemble).
    ranking
        Acquisition and ranking options.
    top_k
        Candidates verified (and shown by ``bete screen``).
    verification
        The DFPT flow and pre-screen; its protocol also decides what is "already computed".
    verify
        Verify (or submit) the top-k; False: screen only.
    round_number, campaign
        Recorded in the screening documents.
    compute_phonons
        cpd/fpd models: run a coarse phonon-only DFPT here for candidates without a stored
        phonon DOS (else they are left out).
    incumbent_of_preset
        The incumbent of the ranking is the best verified Tc of the verification's preset
        (an active-learning campaign); False: of any preset.
    """

    candidates: Sequence[str]
    model_dir: str | None
    ranking: ScreeningFlowMaker
    top_k: int
    verification: Verification = field(default_factory=Verification)
    verify: bool = False
    round_number: int | None = None
    campaign: str | None = None
    compute_phonons: bool = False
    incumbent_of_preset: bool = False
    model_id: str = field(init=False)
    """The ensemble's id (read from its manifest when the request is made)."""
    check: VerificationCheck = field(init=False, repr=False)
    """What DFPT needs of a candidate: the family covers it, its cell is within the limit."""

    def __post_init__(self) -> None:
        """Bad options stop here, before a store is opened or anything computed."""
        if int(self.top_k) < 1:
            raise ValueError(f"top-k must be at least 1, got {self.top_k}")
        try:
            self.model_id = model_id_for(self.model_dir)
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise ValueError(f"model {self.model_dir or '(shipped)'}: {exc}; train one with "
                             "`bete train`") from exc
        self.check = self.verification.check()

    def screening_criteria(self) -> dict[str, Any]:
        """What identifies this screening's documents, besides the candidate id."""
        return {"model_id": self.model_id, "acquisition": self.ranking.acquisition,
                "round": self.round_number, "campaign": self.campaign}


@dataclass
class ScreenVerifyResult:
    """What a screening ranked, which candidates it acquired and their verification rows."""

    screened: phases.ScreenOutcome | None
    """None when the acquisitions were given (a resumed round)."""
    acquired: list[dict[str, Any]]
    verification: list[dict[str, Any]]

    @property
    def ranked(self) -> list[dict[str, Any]]:
        """Ranked prediction rows, best first (empty for a resumed round)."""
        return self.screened.ranked if self.screened is not None else []


def screen_and_verify(request: ScreenRequest, store: Any, *, submit: Submit | None = None,
                      say: Say | None = None, verbose: bool = False, label: str = "",
                      acquired: list[dict[str, Any]] | None = None,
                      done: dict[str, dict[str, Any]] | None = None,
                      on_acquired: Callable[[phases.ScreenOutcome, list[dict[str, Any]]], None]
                      | None = None) -> ScreenVerifyResult:
    """Screen the candidates, then verify the top-k (``request.verify``).

    Parameters
    ----------
    request
        What to screen and how to verify.
    store
        A connected JobStore: screening documents, task documents, MLIP phonons.
    submit
        Hand each DFPT flow to workers instead of running it here (a stored result is
        reported at once; a submitted one as ``pending``).
    say, label, verbose
        Progress lines (``label`` starts them, e.g. ``"round 2: "``).
    acquired, done
        A resumed round: the candidates it acquired (no screening again) and the
        verification rows already final.
    on_acquired
        Called with the screening and the acquired rows before any DFPT runs (a round
        records them, so an interrupted round verifies the same candidates).

    Raises
    ------
    ValueError
        No candidate left to screen (:class:`~workflows.screening.phases.NoCandidatesError`),
        bad ranking options (a bad model or family: when the request is made).
    """
    say = say or (lambda _m: None)
    maker = request.verification.maker()
    screened = None
    if acquired is None:
        screened = _screen(request, store, maker, say, label, verbose)
        acquired = []
        if request.verify:
            acquired = select_for_dfpt(screened.ranked, request.top_k,
                                       request.verification.prescreen, store,
                                       request.screening_criteria(),
                                       lambda m: say(f"{label}{m}"), request.check)
        if on_acquired is not None:
            on_acquired(screened, acquired)
    rows: list[dict[str, Any]] = []
    if request.verify:
        verify = (phases.submitting_verifier(maker, store, submit, say) if submit
                  else phases.local_verifier(maker, store, say, verbose))
        rows = phases.verify_phase(acquired, verify, store, request.screening_criteria(),
                                   done=done)
    return ScreenVerifyResult(screened, acquired, rows)


def _screen(request: ScreenRequest, store: Any, maker: Any, say: Say, label: str,
            verbose: bool) -> phases.ScreenOutcome:
    compute = None
    if request.compute_phonons:
        def compute(candidates: list[Any]) -> None:
            compute_phonon_dos(request.verification, candidates, store, say)
    return phases.screen_phase(
        request.candidates, store, request.model_dir, request.ranking,
        model_id=request.model_id,
        protocol_fingerprint=phases.verification_fingerprint(maker),
        preset=request.verification.preset if request.incumbent_of_preset else None,
        round_number=request.round_number, campaign=request.campaign,
        compute_phonons=compute, say=say, label=label, verbose=verbose)


def compute_phonon_dos(verification: Verification, candidates: list[Any], store: Any,
                       say: Say) -> None:
    """A coarse phonon-only DFPT run here for each candidate (cpd/fpd screening inputs)."""
    from workflows.screening.phonons import PhononDosMaker, run_phonon_dos

    maker = PhononDosMaker.from_preset(preset=verification.preset,
                                       overrides=verification.overrides,
                                       pseudo_family=verification.pseudos,
                                       max_atoms=verification.max_atoms)
    say(f"{len(candidates)} candidate(s) need a coarse phonon DOS: running phonon-only "
        "DFPT here (about half a fast el-ph run each)")
    run_phonon_dos([(c.id, c.structure) for c in candidates], maker, store, progress=say)

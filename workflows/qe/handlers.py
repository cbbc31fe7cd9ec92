"""Recognise QE failures in an output text and say how to retry.

Two pure functions:

- :func:`check_output` — did a run fail, and how (``Failure(kind, error_line)``)?
  :func:`workflows.qe.run.run_qe` uses it on every output.
- :func:`diagnose` — for a recoverable failure, a :class:`Fix`: which namelist
  keys to change for the retry and how many retries are worth it.

A fix is data (a tuple of :class:`Change`), applied to nested namelist
dictionaries such as ``{"control": {...}, "system": {...}, "electrons": {...}}``
(pw.x) or ``{"inputph": {...}}`` (ph.x); keys are QE's own names, including
indexed ones such as ``"alpha_mix(1)"``.

Examples
--------
>>> text = "     convergence NOT achieved after 100 iterations: stopping"
>>> fix = diagnose("pw", text)
>>> fix.kind
'scf_not_converged'
>>> fix.apply({"electrons": {"mixing_beta": 0.4}})["electrons"]["mixing_beta"]
0.2
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

KILLED_RETURNCODES = frozenset({137, 143, -9, -15})
"""Exit codes of a process ended by SIGKILL/SIGTERM (shell and Python conventions)."""

_ERROR_BLOCK = re.compile(r"^ *%{20,}\s*\n(.*?)\n *%{20,}", re.MULTILINE | re.DOTALL)
_SCF_NOT_CONVERGED = re.compile(r"convergence NOT achieved after\s+\d+\s+iterations.*")
_PH_NOT_CONVERGED = re.compile(r"No convergence has been achieved.*")
_TIME_LIMIT = re.compile(r"Maximum CPU time exceeded")
_FORTRAN_ERROR = re.compile(r"^Fortran runtime error:.*$", re.MULTILINE)
_KS_STATES = re.compile(r"number of Kohn-Sham states\s*=\s*(\d+)")
_JOB_DONE = "JOB DONE"


@dataclass(frozen=True)
class Failure:
    """How a QE run failed.

    Attributes
    ----------
    kind : str
        "scf_not_converged", "cannot_bracket_ef", "ph_not_converged", "diagonalization",
        "qe_error" (any other ``%%%%`` block), "time_limit" (``max_seconds`` reached),
        "crash" (Fortran runtime error),
        "killed", "incomplete" (no "JOB DONE") or "other" (non-zero exit only).
    error_line : str
        QE's own message (e.g. "Error in routine efermig (1): internal error, cannot
        bracket Ef") or a sentence saying why the run was judged failed.
    """

    kind: str
    error_line: str


def _error_block(text: str) -> str | None:
    """The first ``%%%%`` block as one line ("Error in routine X (n): message")."""
    match = _ERROR_BLOCK.search(text)
    if match is None:
        return None
    lines = [ln.strip() for ln in match.group(1).splitlines() if ln.strip()]
    # parallel runs may also print "task # 1" / "from X : error # 1" variants
    lines = [ln for ln in lines if not ln.startswith("task #")]
    for i, line in enumerate(lines):
        if line.startswith("Error in routine"):
            return " ".join([line, *lines[i + 1:]])
        found = re.match(r"from (\S+)\s*:\s*error #\s*(-?\d+)", line)
        if found:
            msg = " ".join(lines[i + 1:])
            return f"Error in routine {found.group(1)} ({found.group(2)}): {msg}"
    return " ".join(lines)


def _kind_of_error(error_line: str) -> str:
    low = error_line.lower()
    if "cannot bracket ef" in low:
        return "cannot_bracket_ef"
    if any(s in low for s in ("cdiaghg", "rdiaghg", "s matrix not positive definite",
                              "problems computing cholesky", "too many bands are not converged")):
        return "diagonalization"
    return "qe_error"


def check_output(code: str, output_text: str, returncode: int | None = None) -> Failure | None:
    """Judge a QE run from its output text (and exit status, when known).

    Parameters
    ----------
    code : {"pw", "ph", "q2r", "matdyn"}
        Which executable wrote the output.
    output_text : str
        The whole stdout(+stderr) of the run.
    returncode : int, optional
        The launcher's exit status; negative or 137/143 means killed.

    Returns
    -------
    Failure or None
        None when the run finished cleanly ("JOB DONE", no error, no
        non-convergence message).
    """
    block = _error_block(output_text)
    if block is not None:
        return Failure(_kind_of_error(block), block)
    if code == "pw":
        match = _SCF_NOT_CONVERGED.search(output_text)
        if match:
            return Failure("scf_not_converged", match.group(0).strip())
    if code == "ph":
        match = _PH_NOT_CONVERGED.search(output_text)
        if match:
            return Failure("ph_not_converged", match.group(0).strip())
    if _TIME_LIMIT.search(output_text):
        return Failure("time_limit", "Maximum CPU time exceeded (max_seconds reached); restart "
                       "(ph.x: recover=.true.)")
    fortran = _FORTRAN_ERROR.search(output_text)
    if fortran:
        return Failure("crash", fortran.group(0).strip())
    if returncode is not None and (returncode < 0 or returncode in KILLED_RETURNCODES):
        return Failure("killed", f"killed by a signal (exit status {returncode}) before finishing")
    if _JOB_DONE not in output_text:
        return Failure("incomplete", "the output has no 'JOB DONE' line: the run stopped early "
                       "(killed, out of memory or out of time?)")
    if returncode:
        return Failure("other", f"exited with status {returncode} although the output looks "
                       "complete; check the output file")
    return None


@dataclass(frozen=True)
class Change:
    """One namelist key to change for a retry.

    The new value is ``value`` if given, else ``max(current * factor,
    current + add)`` clipped to ``[lower, upper]`` (rounded up when
    ``integer``); ``current`` is the key's value in the parameters or
    ``default`` (QE's default, or what the output reported) when absent.

    Attributes
    ----------
    namelist : str
        Lower-case namelist name ("electrons", "system", "inputph", ...).
    key : str
        QE's key, e.g. "mixing_beta", "nbnd", "alpha_mix(1)", "recover".
    """

    namelist: str
    key: str
    value: Any = None
    factor: float = 1.0
    add: float = 0.0
    default: float | None = None
    lower: float | None = None
    upper: float | None = None
    integer: bool = False

    def new_value(self, current: Any) -> Any:
        """The value this change gives a key that now holds ``current`` (None = absent)."""
        if self.value is not None:
            return self.value
        base = self.default if current is None else float(current)
        if base is None:
            raise ValueError(f"cannot change {self.namelist}.{self.key}: it is not set and has "
                             "no known default; set it explicitly in the input")
        new = base * self.factor
        if self.add:
            new = max(new, base + self.add)
        if self.lower is not None:
            new = max(new, self.lower)
        if self.upper is not None:
            new = min(new, self.upper)
        return math.ceil(new - 1e-9) if self.integer else new


@dataclass(frozen=True)
class Fix:
    """A retry fix for one recognised failure.

    Attributes
    ----------
    kind : str
        The failure kind it answers (see :class:`Failure`).
    description : str
        One sentence for logs and documents.
    changes : tuple of Change
        Namelist keys to change.
    max_retries : int
        How many times applying this fix again is worth it.
    """

    kind: str
    description: str
    changes: tuple[Change, ...]
    max_retries: int = 3

    def apply(self, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """A changed deep copy of nested namelist parameters (the input is not modified).

        Parameters
        ----------
        params : dict
            ``{namelist: {key: value}}``; namelist names are matched case-insensitively.

        Returns
        -------
        dict
            The parameters with this fix's changes.
        """
        new = copy.deepcopy(params)
        for change in self.changes:
            name = next((n for n in new if n.lower() == change.namelist), change.namelist)
            section = new.setdefault(name, {})
            section[change.key] = change.new_value(section.get(change.key))
        return new


def _scf_fix() -> Fix:
    return Fix(
        "scf_not_converged",
        "SCF did not converge: halve mixing_beta (floor 0.05) and double electron_maxstep "
        "(at least 200)",
        (Change("electrons", "mixing_beta", factor=0.5, default=0.7, lower=0.05),
         Change("electrons", "electron_maxstep", factor=2.0, default=100, lower=200,
                integer=True)),
        max_retries=3,
    )


def _bands_fix(output_text: str) -> Fix:
    found = _KS_STATES.search(output_text)
    nbnd = int(found.group(1)) if found else None
    return Fix(
        "cannot_bracket_ef",
        "cannot bracket Ef: too few bands for the smearing; raise nbnd by half (at least +4)",
        (Change("system", "nbnd", factor=1.5, add=4, default=nbnd, integer=True),),
        max_retries=2,
    )


def _ph_fix() -> Fix:
    return Fix(
        "ph_not_converged",
        "ph.x self-consistency did not converge: halve alpha_mix(1) (floor 0.1) and allow at "
        "least 150 iterations (niter_ph)",
        (Change("inputph", "alpha_mix(1)", factor=0.5, default=0.7, lower=0.1),
         Change("inputph", "niter_ph", factor=2.0, default=100, lower=150, integer=True)),
        max_retries=2,
    )


_BROKEN_RESTART = ("PARTIAL_EL_PHON", "closing tag not found")
"""Signs that ph.x's saved state is unreadable (QE 6.7 el-ph runs killed by a signal)."""


def _from_scratch_fix() -> Fix:
    return Fix("broken_restart", "ph.x could not read its saved state (QE 6.7 cannot recover "
               "an el-ph run killed by a signal): restart from scratch with recover=.false.",
               (Change("inputph", "recover", value=False),), max_retries=1)


def diagnose(code: str, output_text: str, returncode: int | None = None) -> Fix | None:
    """A retry fix for a recoverable failure, or None.

    Parameters
    ----------
    code : {"pw", "ph", "q2r", "matdyn"}
        Which executable wrote the output.
    output_text : str
        The run's output.
    returncode : int, optional
        Exit status (lets a signal-killed run be recognised).

    Returns
    -------
    Fix or None
        None when the run succeeded or the failure has no automatic fix.
    """
    failure = check_output(code, output_text, returncode)
    if failure is None:
        return None
    if code == "pw" and failure.kind == "scf_not_converged":
        return _scf_fix()
    if code == "pw" and failure.kind == "cannot_bracket_ef":
        return _bands_fix(output_text)
    if code == "ph" and failure.kind == "ph_not_converged":
        return _ph_fix()
    if code == "ph" and failure.kind == "crash" and any(m in output_text
                                                        for m in _BROKEN_RESTART):
        return _from_scratch_fix()
    return None  # stopped runs (killed, time limit, incomplete) end the job: a rerun resumes

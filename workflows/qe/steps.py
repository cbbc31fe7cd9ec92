"""Running one QE step inside a calculation directory: retries, restart markers, cleanup.

A calculation directory (``workdir``) holds every input, output and the shared
``outdir`` of one electron-phonon calculation.  Each finished step leaves a marker
``.bete/<step>.json`` with what it returned, so an interrupted calculation that is
started again skips the finished steps and restarts ph.x where it stopped.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from stores.settings import get_settings
from workflows.qe import handlers
from workflows.qe import run as qe_run
from workflows.qe.errors import QEError
from workflows.qe.inputs import QEInput

logger = logging.getLogger(__name__)

MARKER_DIR = ".bete"
STOPPED_KINDS = frozenset({"time_limit", "timeout", "killed", "incomplete"})
"""Failures that end the job instead of an in-job retry: the time or the process is gone (or
the output stops without an error); a rerun of the job resumes (ph.x from its first
unfinished q point, see :func:`workflows.qe.jobs.ph_resume_q`)."""
MAX_SECONDS_NAMELIST = {"pw": "control", "ph": "inputph"}
MIN_MAX_SECONDS = 30.0
"""Shortest ``max_seconds`` given to QE under a deadline (it needs time to stop cleanly)."""

_DEADLINE: ContextVar[float | None] = ContextVar("qe_deadline", default=None)


@contextmanager
def qe_deadline(epoch_s: float | None) -> Iterator[None]:
    """Inside, every QE step stops cleanly (``max_seconds``) by ``epoch_s`` (time.time()).

    A campaign's wall-time budget: pw.x and ph.x get ``max_seconds`` = the time left
    (at least :data:`MIN_MAX_SECONDS`), so a run cut by the budget leaves restart
    files and its rerun resumes.  None = no deadline.
    """
    token = _DEADLINE.set(epoch_s)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _max_seconds() -> float | None:
    """The ``qe_max_seconds`` setting, shortened to the time left before the deadline."""
    setting = get_settings().qe_max_seconds
    deadline = _DEADLINE.get()
    if deadline is None:
        return setting
    left = max(MIN_MAX_SECONDS, deadline - time.time())
    return min(setting, left) if setting else left


def marker_path(workdir: Path, step: str) -> Path:
    """Where the completion marker of ``step`` lives."""
    return Path(workdir) / MARKER_DIR / f"{step}.json"


def read_marker(workdir: Path, step: str) -> dict[str, Any] | None:
    """The stored result of a finished step, or None."""
    path = marker_path(workdir, step)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:  # a marker cut by a crash: the step is not finished
        return None


def write_marker(workdir: Path, step: str, result: dict[str, Any]) -> None:
    """Record ``step`` as finished (atomically: write, then rename)."""
    path = marker_path(workdir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(path)


def run_step(code: str, qe_input: QEInput, step: str, workdir: Path,
             max_retries: int = 3) -> dict[str, Any]:
    """Run one QE executable for ``step``, retrying known recoverable failures.

    Parameters
    ----------
    code : {"pw", "ph", "q2r", "matdyn"}
        Executable.
    qe_input : QEInput
        Input to write as ``<step>.in`` (a copy is changed by fixes, not this object).
    step : str
        Step name: input ``<step>.in``, output ``<step>.out``, marker ``.bete/<step>.json``.
    workdir : Path
        Calculation directory.
    max_retries : int
        Upper bound on retries over all fixes.

    Returns
    -------
    dict
        ``wall_time_s`` (all attempts), ``attempts``, ``fixes`` (descriptions), ``skipped``
        (True when the marker said the step had already finished).

    Raises
    ------
    QEError
        When the run fails and no fix applies (or retries are used up): QE's own error line.
    """
    done = read_marker(workdir, step)
    if done is not None:
        logger.info("%s: already finished in %s, not rerun", step, workdir)
        return {**done, "skipped": True}
    params = {k: dict(v) for k, v in qe_input.namelists.items()}
    max_seconds = _max_seconds()
    if max_seconds and code in MAX_SECONDS_NAMELIST:  # a clean stop QE can restart from
        params.setdefault(MAX_SECONDS_NAMELIST[code], {})["max_seconds"] = float(max_seconds)
    fixes: list[str] = []
    wall = 0.0
    for attempt in range(max_retries + 1):
        current = type(qe_input)(namelists=params, cards=qe_input.cards, title=qe_input.title)
        current.write_file(Path(workdir) / f"{step}.in")
        logger.info("%s: running %s in %s (attempt %d)", step, code, workdir, attempt + 1)
        try:
            result = qe_run.run_qe(code, f"{step}.in", workdir, output_file=f"{step}.out")
        except QEError as err:
            out = Path(workdir) / f"{step}.out"
            text = out.read_text(errors="replace") if out.is_file() else ""
            if err.kind in STOPPED_KINDS:
                logger.warning("%s stopped (%s); rerun to resume", step, err.error_line)
                raise
            fix = handlers.diagnose(code, text)
            if fix is None or attempt >= min(max_retries, fix.max_retries + len(fixes)):
                raise
            logger.warning("%s failed (%s); retrying: %s", step, err.error_line, fix.description)
            fixes.append(fix.description)
            params = fix.apply(params)
            continue
        wall += result.wall_time_s
        record = {"wall_time_s": wall, "attempts": attempt + 1, "fixes": fixes,
                  "command": result.command}
        write_marker(workdir, step, record)
        return {**record, "skipped": False}
    raise QEError(code, f"{step}: gave up after {max_retries} retries", str(workdir))


def remove_scratch(workdir: Path, outdir: str = "tmp", prefix: str = "bete") -> list[str]:
    """Delete the big restart files once the phonons are safe: ``_ph*`` dirs, wavefunctions, dvscf.

    Keeps the charge density, the XML and ``<prefix>.a2Fsave`` (small) so the calculation
    can still be inspected.  Returns the removed paths (relative to ``workdir``).
    """
    base = Path(workdir) / outdir
    removed: list[str] = []
    candidates = [*base.glob("_ph*"), *base.glob(f"{prefix}.wfc*"), *base.glob("*.dvscf*"),
                  *base.glob(f"{prefix}.save/wfc*.dat"), *base.glob(f"{prefix}.mix*"),
                  *Path(workdir).glob("ph_q*/" + outdir)]
    for path in candidates:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
        removed.append(str(path.relative_to(workdir)))
    return removed

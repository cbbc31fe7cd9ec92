"""Run one Quantum ESPRESSO executable (pw.x, ph.x, q2r.x, matdyn.x).

The executable, the MPI launcher and the core count come from
:func:`stores.settings.get_settings`, read when :func:`run_qe` is called
(never frozen into default argument values).  Success is judged from the
output text (:func:`workflows.qe.handlers.check_output`), not only from the
exit code: QE can exit 0 after an error.

This module holds the single seam that tests patch to mock QE
(``workflows.qe.run.run_qe``); import the module, not the function, where
the runner is used, so one patch covers every caller.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stores.settings import get_settings
from workflows.qe.errors import MPILauncherNotFoundError, QEError, QENotInstalledError
from workflows.qe.handlers import check_output
from workflows.qe.progress import PhProgress

progress_logger = logging.getLogger("workflows.qe.progress")

QE_CODES: dict[str, str] = {
    "pw": "pw_cmd", "ph": "ph_cmd", "q2r": "q2r_cmd", "matdyn": "matdyn_cmd",
}
"""Code name → settings field holding its executable."""

POOL_CODES = frozenset({"pw", "ph"})
"""Codes that take ``-nk`` (k-point pools) and run under MPI by default."""

_MPIRUN_NAMES = frozenset({"mpirun", "mpiexec", "orterun"})


@dataclass(frozen=True)
class QERunResult:
    """What one finished QE run left behind.

    Attributes
    ----------
    code : str
        "pw", "ph", "q2r" or "matdyn".
    command : list of str
        The full command line that was run.
    directory : Path
        Working directory of the run.
    output_file : Path
        Where stdout (and stderr) were written.
    wall_time_s : float
        Wall-clock time of the run in seconds.
    returncode : int
        Exit status of the launcher.
    """

    code: str
    command: list[str]
    directory: Path
    output_file: Path
    wall_time_s: float
    returncode: int


def _k_point_estimate(input_text: str) -> int | None:
    """Rough lower bound of irreducible k points from a ``K_POINTS`` card (None if unknown)."""
    match = re.search(r"^\s*K_POINTS\s*[\({]?\s*(\w+)", input_text, re.IGNORECASE | re.MULTILINE)
    if match is None:
        return None
    kind = match.group(1).lower()
    if kind == "gamma":
        return 1
    lines = input_text[match.end():].strip().splitlines()
    if not lines:
        return None
    if kind == "automatic":
        try:
            n1, n2, n3 = (int(x) for x in lines[0].split()[:3])
        except ValueError:
            return None
        return max(1, (n1 * n2 * n3) // 48)
    try:
        return int(lines[0].split()[0])
    except (ValueError, IndexError):
        return None


def default_npool(nprocs: int, n_kpoints: int | None) -> int:
    """Pools for ``-nk``: the largest divisor of ``nprocs`` not above the k-point estimate.

    Parameters
    ----------
    nprocs : int
        MPI processes.
    n_kpoints : int or None
        Estimated irreducible k points (None = unknown: at most 8 pools).

    Returns
    -------
    int
        Number of pools (1 = no ``-nk``).
    """
    cap = 8 if n_kpoints is None else max(1, n_kpoints)
    return max(d for d in range(1, nprocs + 1) if nprocs % d == 0 and d <= cap)


def build_command(
    code: str,
    input_file: str | os.PathLike,
    nprocs: int | None = None,
    npool: int | None = None,
    extra_args: Sequence[str] = (),
    input_text: str | None = None,
) -> list[str]:
    """The command line for one QE run, from the settings read now.

    Parameters
    ----------
    code : {"pw", "ph", "q2r", "matdyn"}
        Which executable.
    input_file : path
        Input file name (passed with ``-in``).
    nprocs : int, optional
        MPI processes; default: ``settings.nprocs`` for pw/ph, 1 for q2r/matdyn.
    npool : int, optional
        k-point pools for pw/ph; default ``settings.npool`` or :func:`default_npool`.
    extra_args : sequence of str
        Extra arguments for the executable (after ``-nk``).
    input_text : str, optional
        The input's text, used to estimate k points for the default pools.

    Returns
    -------
    list of str
        Launcher, its arguments, executable and QE arguments.
    """
    if code not in QE_CODES:
        raise ValueError(f"unknown QE code {code!r}; choose one of {sorted(QE_CODES)}")
    settings = get_settings()
    exe = shlex.split(getattr(settings, QE_CODES[code]))
    if nprocs is None:
        nprocs = settings.nprocs if code in POOL_CODES else 1
    if nprocs < 1:
        raise ValueError(f"nprocs must be at least 1, got {nprocs}")
    launcher = shlex.split(settings.mpi_cmd or "")
    parallel = nprocs > 1 and bool(launcher)
    cmd: list[str] = []
    if parallel:
        cmd = [*launcher, settings.mpi_np_flag, str(nprocs), *shlex.split(settings.mpi_extra_args)]
    cmd += exe
    if code in POOL_CODES and parallel:
        if npool is None:
            npool = settings.npool
        if npool is None:
            npool = default_npool(nprocs, _k_point_estimate(input_text or ""))
        if npool > 1:
            cmd += ["-nk", str(npool)]
    return [*cmd, *extra_args, "-in", str(input_file)]


def _environment(command: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    if Path(command[0]).name in _MPIRUN_NAMES and hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def _check_installed(command: list[str], code: str) -> None:
    settings = get_settings()
    exe = shlex.split(getattr(settings, QE_CODES[code]))[0]
    if shutil.which(exe) is None:
        raise QENotInstalledError(exe)
    if shutil.which(command[0]) is None:
        if command[0] != exe:  # the MPI launcher, not QE
            raise MPILauncherNotFoundError(command[0])
        raise QENotInstalledError(command[0])


def run_qe(
    code: str,
    input_file: str | os.PathLike,
    directory: str | os.PathLike = ".",
    output_file: str | os.PathLike | None = None,
    nprocs: int | None = None,
    npool: int | None = None,
    timeout: float | None = None,
    extra_args: Sequence[str] = (),
) -> QERunResult:
    """Run a QE executable in ``directory`` and check its output.

    Parameters
    ----------
    code : {"pw", "ph", "q2r", "matdyn"}
        Which executable.
    input_file : path
        Input file, relative to ``directory`` or absolute.
    directory : path
        Working directory (QE's relative ``outdir``/``pseudo_dir`` resolve here).
    output_file : path, optional
        Where stdout+stderr go (streamed); default ``<input stem>.out`` in ``directory``.
    nprocs, npool : int, optional
        Override the settings' process and pool counts (see :func:`build_command`).
    timeout : float, optional
        Wall-clock limit in seconds; default ``settings.qe_timeout_s`` (None = none).
    extra_args : sequence of str
        Extra executable arguments.

    Returns
    -------
    QERunResult
        Command, wall time (s), output path, exit status.

    Raises
    ------
    QENotInstalledError
        The executable or the MPI launcher is not found.
    QEError
        The run failed; ``kind`` is "timeout" (our limit) or a
        :class:`workflows.qe.handlers.Failure` kind ("scf_not_converged",
        "cannot_bracket_ef", "ph_not_converged", "killed", "incomplete", ...).
    """
    directory = Path(directory).resolve()
    input_path = Path(input_file)
    if not input_path.is_absolute():
        input_path = directory / input_path
    if not input_path.is_file():
        raise FileNotFoundError(f"QE input {input_path} does not exist; write the input first")
    out_path = Path(output_file) if output_file is not None else input_path.with_suffix(".out")
    if not out_path.is_absolute():
        out_path = directory / out_path
    if timeout is None:
        timeout = get_settings().qe_timeout_s
    command = build_command(code, input_path.name if input_path.parent == directory
                            else input_path, nprocs, npool, extra_args,
                            input_text=input_path.read_text(errors="replace"))
    _check_installed(command, code)
    exe_name = Path(shlex.split(getattr(get_settings(), QE_CODES[code]))[0]).name

    start = time.perf_counter()
    watch = OutputWatcher(code, input_path.read_text(errors="replace"), out_path, start)
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(command, cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_environment(command),
                                start_new_session=True)
        try:
            returncode = _wait(proc, timeout, watch)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise QEError(exe_name, f"killed after the {timeout:g} s time limit; rerun with "
                          "a longer BETE_QE_TIMEOUT_S (ph.x: restart with recover=.true.)",
                          str(directory), kind="timeout") from None
        except BaseException:
            _kill_group(proc)
            raise
    wall = time.perf_counter() - start

    text = out_path.read_text(errors="replace")
    failure = check_output(code, text, returncode=returncode)
    if failure is not None:
        raise QEError(exe_name, failure.error_line, str(directory), kind=failure.kind)
    return QERunResult(code, command, directory, out_path, wall, returncode)


POLL_S = 2.0
"""How often a running QE's output is read for progress (seconds)."""


class OutputWatcher:
    """Logs the progress a running QE writes into its output (ph.x: q points done).

    Codes without a progress reader (pw, q2r, matdyn: one line when they start is enough)
    are not read at all.
    """

    def __init__(self, code: str, input_text: str, output: Path, start: float) -> None:
        self.progress = PhProgress.from_input(input_text) if code == "ph" else None
        self.output = output
        self.start = start
        self.offset = 0

    @property
    def active(self) -> bool:
        """Whether there is anything to read."""
        return self.progress is not None

    def poll(self) -> None:
        """Read what the run wrote since the last poll; log each finished q point."""
        if self.progress is None:
            return
        try:
            with open(self.output, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return
        self.offset += len(chunk)
        before = self.progress.done
        self.progress.feed(chunk.decode("utf-8", errors="replace"))
        elapsed = time.perf_counter() - self.start
        for done in range(before + 1, self.progress.done + 1):  # several may finish per read
            progress_logger.info("ph.x: %s", self.progress.line(elapsed, done))


def _wait(proc: subprocess.Popen, timeout: float | None, watch: OutputWatcher) -> int:
    """``proc.wait(timeout)``, reading the output for progress every :data:`POLL_S`."""
    if not watch.active:
        return proc.wait(timeout=timeout)
    end = None if timeout is None else time.perf_counter() + timeout
    while True:
        step = POLL_S if end is None else min(POLL_S, max(0.0, end - time.perf_counter()))
        try:
            returncode = proc.wait(timeout=step)
        except subprocess.TimeoutExpired:
            watch.poll()
            if end is not None and time.perf_counter() >= end:
                raise
            continue
        watch.poll()
        return returncode


def _kill_group(proc: subprocess.Popen) -> None:
    """Terminate the process group this module started (the launcher and its ranks)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


_VERSION_LINE = re.compile(r"Program PWSCF v\.(\S+)")


def detect_qe_version(timeout_s: float = 60.0) -> str | None:
    """QE version pw.x reports (e.g. ``6.7MaX``), from a run without input; None if unknown.

    Runs the ``pw_cmd`` setting once, without MPI, reading an empty input: pw.x
    prints its banner and stops.  Used to know a protocol's fingerprint before
    the first calculation (:meth:`workflows.qe.flows.ElphFlowMaker.protocol_identity`).
    """
    return _detect_qe_version(get_settings().pw_cmd, timeout_s)


@lru_cache(maxsize=8)
def _detect_qe_version(pw_cmd: str, timeout_s: float) -> str | None:
    command = shlex.split(pw_cmd)
    if not command or shutil.which(command[0]) is None:
        return None
    try:  # in a scratch folder: pw.x leaves input_tmp.in and CRASH where it runs
        with tempfile.TemporaryDirectory(prefix="bete-qe-version-") as here:
            proc = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout_s, env=_environment(command),
                                  cwd=here)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION_LINE.search(proc.stdout + proc.stderr)
    return found.group(1) if found else None


QE_PROCESS_NAMES = ("pw.x", "ph.x", "q2r.x", "matdyn.x", "mpirun", "mpiexec", "orterun",
                    "prterun", "srun")


def stray_qe_processes(directory: str | os.PathLike[str]) -> list[int]:
    """PIDs of QE (or MPI launcher) processes on this host working in ``directory``.

    A run whose Python parent was killed (``kill -9``) leaves its QE processes
    running (they have their own session); they are found by their working
    directory (``/proc/<pid>/cwd``, Linux) inside ``directory``.
    """
    root = Path(directory).resolve()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            name = Path(os.readlink(proc / "exe")).name
        except OSError:
            continue
        if (cwd == root or root in cwd.parents) and (
                name in QE_PROCESS_NAMES or name.endswith(".x")):
            found.append(int(proc.name))
    return sorted(found)


def stop_stray_qe(directory: str | os.PathLike[str], grace_s: float = 10.0) -> list[int]:
    """Stop the stray QE processes of ``directory`` (SIGTERM, then SIGKILL); returns their PIDs.

    Call it only while holding the claim on the calculation: the processes belong
    to a dead run of it.
    """
    pids = stray_qe_processes(directory)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        end = time.time() + grace_s
        while time.time() < end and any(_alive(pid) for pid in pids):
            time.sleep(0.2)
        if not any(_alive(pid) for pid in pids):
            break
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False

"""Running Fireworks: here (rapidfire, singleshot, offline) or through a queue."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jobflow import JobStore

from launchers.fireworks.config import LaunchPadError
from launchers.fireworks.patches import fix_offline_zopen, remember_fw_classes
from stores.settings import pinned_config_file


@contextlib.contextmanager
def worker_job_store(store: JobStore | None) -> Iterator[None]:
    """Make jobflow's ``JOB_STORE`` (used by workflows without an embedded store) ``store``."""
    if store is None:
        yield
        return
    import jobflow

    previous = jobflow.SETTINGS.JOB_STORE
    jobflow.SETTINGS.JOB_STORE = store
    try:
        yield
    finally:
        jobflow.SETTINGS.JOB_STORE = previous


@contextlib.contextmanager
def _chdir(path: str | os.PathLike[str] | None) -> Iterator[None]:
    if path is None:
        yield
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def launch_rapidfire(launchpad: Any, *, fworker: Any = None, store: JobStore | None = None,
                     nlaunches: int = 0, launch_dir: str | os.PathLike[str] | None = None,
                     timeout_s: float | None = None, sleep_time_s: int = 5,
                     max_loops: int = -1) -> None:
    """Run Fireworks here until none is left (``rlaunch rapidfire``).

    Parameters
    ----------
    nlaunches
        0 = until no work is left; N = stop after N Fireworks.
    launch_dir
        Where the ``launcher_*`` directories go (default: working directory).

    Notes
    -----
    The bete settings file is looked up once, here (``BETE_CONFIG_FILE``,
    else ``./bete_settings.yaml``), and kept for the jobs, which run in
    ``launcher_*`` directories (:func:`stores.settings.pinned_config_file`).
    """
    from fireworks.core.rocket_launcher import rapidfire

    with pinned_config_file(), worker_job_store(store), _chdir(launch_dir):
        rapidfire(launchpad, fworker=fworker, m_dir=os.getcwd(), nlaunches=nlaunches,
                  max_loops=max_loops, sleep_time=sleep_time_s,
                  timeout=None if timeout_s is None else int(timeout_s))


def launch_singleshot(launchpad: Any, *, fworker: Any = None, store: JobStore | None = None,
                      fw_id: int | None = None, offline: bool = False,
                      launch_dir: str | os.PathLike[str] | None = None) -> bool:
    """Run one Firework here (``rlaunch singleshot``).

    With ``offline=True`` no LaunchPad is contacted: the Firework comes from
    ``FW_offline.json`` in ``launch_dir`` (written by an offline queue
    launch) and the result is written next to it for
    :func:`recover_offline`.

    Returns
    -------
    bool
        Whether a Firework ran.
    """
    from fireworks.core.rocket_launcher import launch_rocket

    if offline:
        fix_offline_zopen()
    with pinned_config_file(), worker_job_store(store), _chdir(launch_dir):
        if offline and not Path("FW_offline.json").exists():
            raise LaunchPadError(f"no FW_offline.json in {os.getcwd()}; offline launches run in "
                                 "the directory an offline queue launch prepared")
        return bool(launch_rocket(None if offline else launchpad, fworker, fw_id=fw_id))


def launch_queue(launchpad: Any, qadapter: Any, *, fworker: Any = None, nlaunches: int = 0,
                 launch_dir: str | os.PathLike[str] = ".", njobs_queue: int = 0,
                 reserve: bool = False, offline: bool = False,
                 timeout_s: float | None = None, sleep_time_s: int = 5) -> None:
    """Submit queue jobs that pull Fireworks (``qlaunch rapidfire``).

    Parameters
    ----------
    qadapter
        A FireWorks queue adapter; its ``rocket_launch`` command runs on the
        compute node.
    nlaunches
        Queue jobs to submit (0 = as long as there is READY work).
    njobs_queue
        Stop submitting while this many jobs are queued (0 = no limit).
    reserve
        Reservation mode: each queue job is bound to one Firework, whose
        ``_queueadapter`` spec entries (from the resources) set its queue,
        walltime and cores.
    offline
        Compute nodes need not reach the LaunchPad: implies ``reserve``,
        adds ``--offline`` to the rocket launch and writes
        ``FW_offline.json``; run :func:`recover_offline` afterwards.
    """
    from fireworks.queue.queue_launcher import rapidfire

    remember_fw_classes(qadapter)  # FireWorks copies the adapter through load_object()
    if offline:
        reserve = True
        if "--offline" not in qadapter.get("rocket_launch", ""):
            qadapter["rocket_launch"] = qadapter["rocket_launch"] + " --offline"
    if reserve and "singleshot" not in qadapter.get("rocket_launch", ""):
        raise LaunchPadError("reservation/offline mode needs a queue adapter whose rocket_launch "
                             "runs a single Firework (`bete launch singleshot` or "
                             "`rlaunch singleshot`)")
    Path(launch_dir).mkdir(parents=True, exist_ok=True)
    with pinned_config_file():  # the queue jobs inherit the submitter's environment
        rapidfire(launchpad, fworker, qadapter, launch_dir=str(launch_dir),
                  nlaunches=nlaunches, njobs_queue=njobs_queue, reserve=reserve,
                  sleep_time=sleep_time_s, timeout=None if timeout_s is None else int(timeout_s))


def recover_offline(launchpad: Any, *, fworker_name: str | None = None,
                    ignore_errors: bool = False) -> tuple[list[int], list[int]]:
    """Copy the results of offline launches back into the LaunchPad.

    Returns
    -------
    tuple of lists
        Recovered and failed Firework ids.
    """
    recovered: list[int] = []
    failed: list[int] = []
    query = {"completed": False, "deprecated": False}
    for run in launchpad.offline_runs.find(query, {"launch_id": 1, "fw_id": 1}):
        if fworker_name and not launchpad.launches.count_documents(
                {"launch_id": run["launch_id"], "fworker.name": fworker_name}):
            continue
        bad = launchpad.recover_offline(run["launch_id"], ignore_errors=ignore_errors)
        (failed if bad else recovered).append(int(run["fw_id"]))
    return recovered, failed

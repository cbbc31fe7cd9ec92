"""Run a jobflow ``Flow`` here, against a JobStore: the one local runner of the project.

Every local run (electron-phonon flows, phonon-only flows, screening flows) goes
through :func:`run_flow_locally`, so they share how jobflow is called and how quiet
it is.  Tests replace it by name in the module that calls it (``monkeypatch`` at
``workflows.qe.local.run_flow_locally`` fakes the DFPT runs and nothing else).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobflow import Flow, run_locally


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

"""Run jobflow flows through FireWorks: submission, launching, status, reruns.

One module per concern: :mod:`~launchers.fireworks.config` (finding and reading the
LaunchPad, FWorker and queue-adapter files), :mod:`~launchers.fireworks.patches` (runtime
fixes of FireWorks internals), :mod:`~launchers.fireworks.submit` (resources, dedup,
``submit_flows``), :mod:`~launchers.fireworks.launch` (rapidfire, singleshot, queue,
offline recovery) and :mod:`~launchers.fireworks.status` (status, reruns).  The names below
are the API the command line and the tests use.

A thin layer over :func:`jobflow.managers.fireworks.flow_to_workflow` and
:meth:`fireworks.LaunchPad.add_wf`; :mod:`~launchers.fireworks.submit` says what it adds
(resources, no duplicate work, where results are stored).
"""

from launchers.fireworks.config import (
    DEFAULT_TIMEOUT_S,
    LaunchPadError,
    check_launchpad,
    close_launchpad,
    launchpad_address,
    load_fworker,
    load_launchpad,
    load_qadapter,
)
from launchers.fireworks.launch import (
    launch_queue,
    launch_rapidfire,
    launch_singleshot,
    recover_offline,
    worker_job_store,
)
from launchers.fireworks.status import rerun_fireworks, workflow_status
from launchers.fireworks.submit import (
    DEDUP_METADATA_KEY,
    Submission,
    apply_resources,
    dedup_key_for,
    ensure_initialized,
    iter_jobs,
    launchpad_submitter,
    resources_to_spec,
    submit_flows,
)

__all__ = ["DEDUP_METADATA_KEY", "DEFAULT_TIMEOUT_S", "LaunchPadError", "Submission",
           "apply_resources", "check_launchpad", "close_launchpad", "dedup_key_for",
           "ensure_initialized", "iter_jobs", "launch_queue", "launch_rapidfire",
           "launch_singleshot", "launchpad_address", "launchpad_submitter", "load_fworker",
           "load_launchpad", "load_qadapter", "recover_offline", "rerun_fireworks",
           "resources_to_spec", "submit_flows", "worker_job_store", "workflow_status"]

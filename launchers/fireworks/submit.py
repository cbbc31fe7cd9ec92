"""Submitting flows: per-job resources, the dedup key, one workflow per piece of work.

- **resources**: per-job FireWorks options (worker category, fworker name, queue parameters
  for reservation mode, priority) chosen by job-name pattern and written to
  ``JobConfig.manager_config``, which jobflow copies into each Firework spec (and passes on
  to jobs a job creates at run time);
- **no duplicate work**: every workflow is tagged with a deterministic key
  (``metadata.bete_dedup_key``; by default the flow's ``input_hash``) and a flow whose key is
  already on the LaunchPad is not added again;
- **the job store**: by default nothing is embedded in the workflow, so each worker writes to
  the store *it* is configured with.  A store passed to :func:`submit_flows` is serialised
  into every Firework spec instead, credentials included, so the CLI only does that for
  stores without secrets.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, JobStore
from jobflow.managers.fireworks import flow_to_workflow

from launchers.fireworks.config import (
    LaunchPadError,
    close_launchpad,
    launchpad_address,
    load_launchpad,
)

logger = logging.getLogger(__name__)

DEDUP_METADATA_KEY = "bete_dedup_key"
#: Resource keys that become top-level Firework spec keys.
SPEC_KEYS = {"category": "_category", "fworker": "_fworker", "priority": "_priority",
             "launch_dir": "_launch_dir", "dupefinder": "_dupefinder"}
#: Resource keys that go to ``_queueadapter`` (used by ``qlaunch`` in reservation mode).
QUEUE_KEYS = {"queue": "queue", "walltime": "walltime", "nodes": "nodes", "cores": "ntasks",
              "ntasks": "ntasks", "ntasks_per_node": "ntasks_per_node",
              "cpus_per_task": "cpus_per_task", "account": "account", "mem": "mem",
              "qos": "qos", "constraint": "constraint", "job_name": "job_name"}

DedupKey = str | Callable[[Flow], str | None] | None
ResourceMap = Mapping[str, Mapping[str, Any]]


def resources_to_spec(resources: Mapping[str, Any]) -> dict[str, Any]:
    """Firework spec entries for one resource request.

    Parameters
    ----------
    resources
        Keys ``category`` → ``_category``, ``fworker`` → ``_fworker``,
        ``priority`` → ``_priority``, ``launch_dir`` → ``_launch_dir``;
        queue keys (``queue``, ``walltime``, ``nodes``, ``cores`` (=
        ``ntasks``), ``ntasks_per_node``, ``cpus_per_task``, ``account``,
        ``mem``, ``qos``, ``constraint``) and a raw ``queueadapter`` mapping
        → ``_queueadapter``; ``spec`` → copied as is.

    Returns
    -------
    dict
        Spec entries for ``JobConfig.manager_config``.

    Raises
    ------
    ValueError
        For an unknown key (the message lists the known ones).
    """
    spec: dict[str, Any] = {}
    queue: dict[str, Any] = {}
    for key, value in resources.items():
        if key in SPEC_KEYS:
            spec[SPEC_KEYS[key]] = value
        elif key in QUEUE_KEYS:
            queue[QUEUE_KEYS[key]] = value
        elif key == "queueadapter":
            if not isinstance(value, Mapping):
                raise ValueError("resources: `queueadapter` must be a mapping of queue options")
            queue.update(value)
        elif key == "spec":
            if not isinstance(value, Mapping):
                raise ValueError("resources: `spec` must be a mapping of Firework spec keys")
            spec.update(value)
        else:
            known = sorted([*SPEC_KEYS, *QUEUE_KEYS, "queueadapter", "spec"])
            raise ValueError(f"unknown resource key {key!r}; use one of {', '.join(known)}")
    if queue:
        spec["_queueadapter"] = queue
    return spec


def iter_jobs(flow: Flow | Job) -> Iterator[Job]:
    """Every job of a flow, nested flows included."""
    if isinstance(flow, Job):
        yield flow
        return
    for item in flow.jobs:
        yield from iter_jobs(item)


def apply_resources(flow: Flow | Job, resources: ResourceMap | None) -> Flow | Job:
    """Set each job's ``manager_config`` from the first matching name pattern.

    Parameters
    ----------
    flow
        Changed in place (and returned).
    resources
        Ordered mapping of ``fnmatch`` patterns on the job name (``"ph*"``,
        ``"*parse*"``, ``"*"``) to resource requests (see
        :func:`resources_to_spec`).  The first matching pattern wins; its
        entries override what the job's Maker set.  Jobs created while the
        flow runs inherit their parent's settings (jobflow's
        ``pass_manager_config``).

    Returns
    -------
    Flow or Job
        ``flow``.
    """
    if not resources:
        return flow
    compiled = [(pattern, resources_to_spec(res)) for pattern, res in resources.items()]
    for job in iter_jobs(flow):
        for pattern, spec in compiled:
            if fnmatch.fnmatchcase(job.name, pattern):
                job.config.manager_config = {**job.config.manager_config, **spec}
                break
    return flow


def dedup_key_for(flow: Flow | Job, dedup_key: DedupKey = "input_hash") -> str | None:
    """The deterministic key that identifies a flow's work.

    Parameters
    ----------
    flow
        The flow (or job) about to be submitted.
    dedup_key
        None: no key (always submit).  A callable: called with the flow.
        A string: a metadata key, looked up in the flow's metadata, else in
        its jobs' metadata (one distinct value → that value; several → a
        hash of the sorted values).

    Returns
    -------
    str or None
        None when the flow carries no such key.
    """
    if dedup_key is None:
        return None
    if callable(dedup_key):
        value = dedup_key(flow if isinstance(flow, Flow) else Flow([flow]))
        return None if value is None else str(value)
    metadata = getattr(flow, "metadata", None) or {}
    if metadata.get(dedup_key) is not None:
        return str(metadata[dedup_key])
    values = sorted({str(j.metadata[dedup_key]) for j in iter_jobs(flow)
                     if j.metadata.get(dedup_key) is not None})
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


def ensure_initialized(lp: Any) -> bool:
    """Initialise a LaunchPad database that has never been used (``lpad reset``).

    Only a database without Fireworks, workflows and id counter is touched.

    Returns
    -------
    bool
        Whether the database was initialised now.
    """
    if lp.fw_id_assigner.find_one({}) is not None:
        return False
    if lp.fireworks.count_documents({}) or lp.workflows.count_documents({}):
        raise LaunchPadError(f"the LaunchPad at {launchpad_address(lp)} holds Fireworks but no "
                             "id counter; repair it with `lpad reset` (this deletes them)")
    lp.reset("", require_password=False, max_reset_wo_password=0)
    logger.info("initialised the empty LaunchPad database at %s", launchpad_address(lp))
    return True


def find_workflow(lp: Any, key: str) -> dict[str, Any] | None:
    """The LaunchPad workflow document tagged with ``key`` (None if absent)."""
    return lp.workflows.find_one({f"metadata.{DEDUP_METADATA_KEY}": key},
                                 {"nodes": 1, "name": 1, "state": 1, "metadata": 1})


@dataclass
class Submission:
    """Outcome of submitting one flow.

    Attributes
    ----------
    name
        Flow name.
    key
        Dedup key (None when the flow carries none).
    added
        False when a workflow with the same key was already on the LaunchPad.
    fw_ids
        Firework ids of the (new or existing) workflow.
    state
        State of the existing workflow, or ``"READY"``/``"WAITING"`` for a new one.
    """

    name: str
    key: str | None
    added: bool
    fw_ids: list[int] = field(default_factory=list)
    state: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return {"name": self.name, "key": self.key, "added": self.added,
                "fw_ids": self.fw_ids, "state": self.state}


def submit_flows(flows: Flow | Job | Iterable[Flow | Job], launchpad: Any, *,
                 store: JobStore | None = None, resources: ResourceMap | None = None,
                 dedup_key: DedupKey = "input_hash",
                 metadata: Mapping[str, Any] | None = None) -> list[Submission]:
    """Add flows to a LaunchPad as FireWorks workflows, skipping ones already there.

    Parameters
    ----------
    flows
        One flow/job or several.
    launchpad
        A :class:`fireworks.LaunchPad`.
    store
        Embedded into every Firework (serialised *with its credentials*);
        None (default) lets each worker use its own jobflow ``JOB_STORE``.
    resources
        Job-name pattern → resources (see :func:`apply_resources`).
    dedup_key
        How to identify duplicate work (see :func:`dedup_key_for`).
    metadata
        Extra workflow metadata.

    Returns
    -------
    list of Submission
        One per flow, in order.

    Notes
    -----
    A LaunchPad database that was never used is initialised first (what
    ``lpad reset`` does to an empty database).  The duplicate check and the
    insertion are two steps: two submitters racing on the same structure
    can both add it.
    """
    if isinstance(flows, Flow | Job):
        flows = [flows]
    ensure_initialized(launchpad)
    results = []
    for flow in flows:
        key = dedup_key_for(flow, dedup_key)
        name = flow.name
        if key is not None:
            existing = find_workflow(launchpad, key)
            if existing is not None:
                logger.info("%s is already on the LaunchPad (key %s, state %s); not adding it "
                            "again", name, key, existing.get("state"))
                results.append(Submission(name, key, False, list(existing.get("nodes", [])),
                                          existing.get("state")))
                continue
        else:
            logger.warning("%s has no %s; it cannot be checked for duplicates", name,
                           dedup_key if isinstance(dedup_key, str) else "dedup key")
        apply_resources(flow, resources)
        wf_metadata = {**(getattr(flow, "metadata", None) or {}), **(metadata or {})}
        if key is not None:
            wf_metadata[DEDUP_METADATA_KEY] = key
        wf = flow_to_workflow(flow, store=store, name=name,  # type: ignore[arg-type]
                              metadata=wf_metadata)  # None = the worker's JOB_STORE
        id_map = launchpad.add_wf(wf)
        fw_ids = sorted(int(v) for v in id_map.values())
        results.append(Submission(name, key, True, fw_ids, "READY"))
    return results


def launchpad_submitter(launchpad_file: str | os.PathLike[str] | None = None,
                        ) -> Callable[[Flow], str]:
    """``submit(flow) -> line``: adds one flow to the LaunchPad (:func:`submit_flows`).

    The LaunchPad of ``launchpad_file`` (None: the usual search) is opened and closed for
    each flow; what the line says is whether the flow was added or already there.

    Raises
    ------
    LaunchPadError
        When the LaunchPad cannot be read or reached.
    """
    def submit(flow: Flow) -> str:
        lp = load_launchpad(launchpad_file)
        try:
            res = submit_flows(flow, lp)[0]
        finally:
            close_launchpad(lp)
        return (f"{'submitted' if res.added else 'already on'} the LaunchPad "
                f"(fw ids {res.fw_ids})")

    return submit

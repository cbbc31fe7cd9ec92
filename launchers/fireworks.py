"""Run jobflow flows through FireWorks: submission, launching, status, reruns.

A thin layer over :func:`jobflow.managers.fireworks.flow_to_workflow` and
:meth:`fireworks.LaunchPad.add_wf`, with the three things a cluster needs:

- **resources**: per-job FireWorks options (worker category, fworker name,
  queue parameters for reservation mode, priority) chosen by job-name
  pattern and written to ``JobConfig.manager_config``, which jobflow copies
  into each Firework spec (and passes on to jobs a job creates at run time);
- **no duplicate work**: every workflow is tagged with a deterministic key
  (``metadata.bete_dedup_key``; by default the flow's ``input_hash``) and a
  flow whose key is already on the LaunchPad is not added again;
- **the job store**: by default nothing is embedded in the workflow, so each
  worker writes to the store *it* is configured with (``bete launch`` sets
  jobflow's ``JOB_STORE`` from ``--store``/``BETE_STORE``/the settings).
  A store passed to :func:`submit_flows` is serialised into every Firework
  spec instead, credentials included, so the CLI only does that for stores
  without secrets.

FireWorks' mongomock mode (``MONGOMOCK_SERVERSTORE_FILE``) keeps the whole
LaunchPad in one JSON file that is written when the client is garbage
collected; :func:`close_launchpad` writes it explicitly.  It is for tests and
demos only: a single process at a time, and a killed process loses its work.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jobflow import Flow, Job, JobStore
from jobflow.managers.fireworks import flow_to_workflow

from stores.config import StoreConfigError, expand_env, mask_text
from stores.settings import pinned_config_file

logger = logging.getLogger(__name__)

DEDUP_METADATA_KEY = "bete_dedup_key"
LAUNCHPAD_FILE = "my_launchpad.yaml"
FWORKER_FILE = "my_fworker.yaml"
QADAPTER_FILE = "my_qadapter.yaml"
DEFAULT_TIMEOUT_S = 5.0

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


class LaunchPadError(RuntimeError):
    """The LaunchPad (or its file) is unusable; the message is one masked line."""


# ------------------------------------------------------------------ LaunchPad files
def find_config_file(explicit: str | os.PathLike[str] | None, name: str,
                     fw_default: str | None = None) -> Path | None:
    """Which FireWorks config file to use.

    Parameters
    ----------
    explicit
        A path the user gave (must exist).
    name
        File name looked up in the working directory (``my_launchpad.yaml``).
    fw_default
        FireWorks' own lookup result (``fw_config.LAUNCHPAD_LOC`` ...).

    Returns
    -------
    pathlib.Path or None
        The explicit file, else ``./name`` if present, else FireWorks'
        default, else None.

    Raises
    ------
    LaunchPadError
        When an explicit file does not exist.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise LaunchPadError(f"{path} does not exist; run `bete config init DIR` for a "
                                 "template or give the right path")
        return path
    local = Path.cwd() / name
    if local.is_file():
        return local
    if fw_default:
        return Path(fw_default)
    return None


def _fw_config() -> Any:
    from fireworks import fw_config

    return fw_config


def _mongoclient_class() -> Any:
    """The client class FireWorks uses now (honours ``MONGOMOCK_SERVERSTORE_FILE``)."""
    if os.environ.get("MONGOMOCK_SERVERSTORE_FILE"):
        import mongomock_persistence

        return mongomock_persistence.MongoClient
    import pymongo

    return pymongo.MongoClient


def using_mongomock(lp: Any) -> bool:
    """Whether a LaunchPad runs on FireWorks' mongomock file mode."""
    return "mongomock" in type(getattr(lp, "connection", None)).__module__


def _patch_mongoclient() -> None:
    """Make an already-imported FireWorks use the client its settings ask for now.

    ``fireworks.fw_config`` picks mongomock only if ``MONGOMOCK_SERVERSTORE_FILE``
    was set before FireWorks was first imported; setting it later (tests, a
    demo shell) would silently talk to a real server on localhost.
    """
    from fireworks.core import launchpad as lp_module

    client = _mongoclient_class()
    if lp_module.MongoClient is not client:
        if os.environ.get("MONGOMOCK_SERVERSTORE_FILE"):
            import mongomock.gridfs

            mongomock.gridfs.enable_gridfs_integration()
        lp_module.MongoClient = client


#: Key of ``my_launchpad.yaml`` (bete's own) naming a mongomock data file.
MONGOMOCK_FILE_KEY = "mongomock_file"


def use_mongomock_file(path: Path) -> None:
    """Switch FireWorks to its mongomock file mode with the data in ``path`` (created)."""
    path = path.expanduser().resolve()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(path)
    _patch_mongoclient()


def launchpad_address(lp: Any) -> str:
    """``host:port/name`` of a LaunchPad, masked."""
    if getattr(lp, "uri_mode", False):
        return mask_text(str(lp.host))
    return mask_text(f"{lp.host}:{lp.port}/{lp.name}", [lp.password or ""])


def load_launchpad(path: str | os.PathLike[str] | None = None, *,
                   check: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """The LaunchPad a file describes, checked to be reachable.

    Parameters
    ----------
    path
        ``my_launchpad.yaml``; None = ``./my_launchpad.yaml`` if present, else
        FireWorks' own lookup (``FW_CONFIG_FILE``, ``~/.fireworks``), else
        FireWorks' default (``localhost:27017/fireworks``).  ``${VAR}`` and
        ``${VAR:-default}`` in the file are expanded from the environment.
    check
        Ping the server first, giving up after ``timeout_s``.
    timeout_s
        Server-selection timeout of the check.

    Returns
    -------
    fireworks.LaunchPad

    Raises
    ------
    LaunchPadError
        One line with the address tried when the file is bad or the server
        cannot be reached.
    """
    from fireworks import LaunchPad

    _patch_mongoclient()
    found = find_config_file(path, LAUNCHPAD_FILE, _fw_config().LAUNCHPAD_LOC)
    try:
        if found is None:
            lp = LaunchPad()
        else:
            settings = yaml.safe_load(found.read_text()) or {}
            if not isinstance(settings, dict):
                raise ValueError("it must hold a mapping (host, port, name, ...)")
            settings = expand_env(settings, source=str(found))
            mock = settings.pop(MONGOMOCK_FILE_KEY, None)
            if mock:
                use_mongomock_file(found.parent / str(mock))
            settings.setdefault("host", None)
            lp = LaunchPad.from_dict(settings)
    except StoreConfigError as exc:
        raise LaunchPadError(str(exc)) from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LaunchPadError(f"cannot read the LaunchPad file {found}: {mask_text(first)}"
                             ) from None
    if check:
        check_launchpad(lp, timeout_s=timeout_s)
    return lp


def check_launchpad(lp: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Ping a LaunchPad's server; raise :class:`LaunchPadError` (one line) if it fails."""
    if using_mongomock(lp):
        return
    from fireworks import LaunchPad

    settings = lp.to_dict()
    kwargs = dict(settings.get("mongoclient_kwargs") or {})
    kwargs["serverSelectionTimeoutMS"] = int(timeout_s * 1000)
    kwargs["connectTimeoutMS"] = int(timeout_s * 1000)
    settings["mongoclient_kwargs"] = kwargs
    settings["strm_lvl"] = "ERROR"
    probe = None
    try:
        probe = LaunchPad.from_dict(settings)
        probe.connection.admin.command("ping")
        probe.db.list_collection_names()  # needs authentication, unlike ping
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for cut in (" (configured timeouts", ", Timeout:", ", Topology Description"):
            reason = reason.split(cut)[0]
        raise LaunchPadError(
            f"cannot reach the LaunchPad at {launchpad_address(lp)} within {timeout_s:g} s "
            f"({type(exc).__name__}: {mask_text(reason, [lp.password or ''])}); check "
            "my_launchpad.yaml (host, port, credentials) and that MongoDB is reachable from here"
        ) from None
    finally:
        if probe is not None:
            probe.connection.close()


def close_launchpad(lp: Any) -> None:
    """Flush a mongomock-file LaunchPad to its file; close a real one's client.

    Idempotent: a second call does nothing (a stale copy must never be written
    over what another LaunchPad wrote in between).
    """
    if getattr(lp, "_bete_closed", False):
        return
    lp._bete_closed = True
    store = getattr(getattr(lp, "connection", None), "_store", None)
    if store is not None and hasattr(store, "_to_file") and getattr(store, "_filename", None):
        finalizer = getattr(store, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()  # a later garbage collection must not write stale data back
        store._to_file()
        return
    with contextlib.suppress(Exception):
        lp.connection.close()


def load_fworker(path: str | os.PathLike[str] | None = None) -> Any:
    """The FWorker a file describes (``./my_fworker.yaml``, FireWorks' lookup, or default)."""
    from fireworks import FWorker

    found = find_config_file(path, FWORKER_FILE, _fw_config().FWORKER_LOC)
    return FWorker.from_file(str(found)) if found is not None else FWorker()


def _remember_fw_classes(*objects: Any) -> None:
    """Tell FireWorks where its queue adapter classes live.

    ``load_object`` otherwise searches (and imports) every module of its
    USER_PACKAGES, FireWorks' own test modules included, the first time it
    meets ``_fw_name: CommonAdapter``.
    """
    from fireworks.utilities import fw_serializers

    known = {"CommonAdapter": "fireworks.user_objects.queue_adapters.common_adapter",
             "PBSAdapterNEWT": "fireworks.user_objects.queue_adapters.pbs_newt_adapter"}
    for obj in objects:
        known[getattr(obj, "_fw_name", type(obj).__name__)] = type(obj).__module__
    for name, module in known.items():
        fw_serializers.SAVED_FW_MODULES.setdefault(name, module)


def load_qadapter(path: str | os.PathLike[str] | None = None) -> Any:
    """The queue adapter a file describes (``./my_qadapter.yaml`` or FireWorks' lookup).

    Raises
    ------
    LaunchPadError
        When no queue adapter file can be found.
    """
    from fireworks.utilities.fw_serializers import load_object_from_file

    _remember_fw_classes()
    found = find_config_file(path, QADAPTER_FILE, _fw_config().QUEUEADAPTER_LOC)
    if found is None:
        raise LaunchPadError("no queue adapter: give --qadapter FILE or put my_qadapter.yaml "
                             "in this directory (`bete config init DIR` writes one)")
    return load_object_from_file(str(found))


# ------------------------------------------------------------------------ resources
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


# ---------------------------------------------------------------------------- dedup
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


# ------------------------------------------------------------------------ launching
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
        _fix_offline_zopen()
    with pinned_config_file(), worker_job_store(store), _chdir(launch_dir):
        if offline and not Path("FW_offline.json").exists():
            raise LaunchPadError(f"no FW_offline.json in {os.getcwd()}; offline launches run in "
                                 "the directory an offline queue launch prepared")
        return bool(launch_rocket(None if offline else launchpad, fworker, fw_id=fw_id))


def _fix_offline_zopen() -> None:
    """Let FireWorks' offline mode run with a monty whose ``zopen`` needs a mode.

    FireWorks 2.1.4's ``Rocket`` reads ``FW_offline.json`` with ``zopen(path)``;
    monty >= 2025 made ``mode`` a required argument, so every offline launch
    fails with ``TypeError: zopen() missing 1 required positional argument``.
    The wrapper supplies FireWorks' intended default (text mode).
    """
    import inspect

    from fireworks.core import rocket

    current = rocket.zopen
    if getattr(current, "_bete_default_mode", False):
        return
    if inspect.signature(current).parameters["mode"].default is not inspect.Parameter.empty:
        return

    def zopen(filename: Any, mode: str = "rt", **kwargs: Any) -> Any:
        if "t" in mode:
            kwargs.setdefault("encoding", "utf-8")
        return current(filename, mode, **kwargs)

    zopen._bete_default_mode = True  # type: ignore[attr-defined]
    rocket.zopen = zopen


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

    _remember_fw_classes(qadapter)  # FireWorks copies the adapter through load_object()
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


# --------------------------------------------------------------------- status/rerun
def workflow_status(launchpad: Any, *, query: Mapping[str, Any] | None = None,
                    limit: int = 0) -> list[dict[str, Any]]:
    """Workflows with their state and their jobs' states.

    Parameters
    ----------
    query
        MongoDB query on the ``workflows`` collection (e.g.
        ``{"state": "FIZZLED"}``).
    limit
        At most this many workflows, newest first (0 = all).

    Returns
    -------
    list of dict
        ``{"name", "state", "wf_id", "key", "created_on", "updated_on",
        "jobs": [{"fw_id", "name", "state", "job_uuid", "category",
        "launch_dir"}]}``; ``wf_id`` is the lowest Firework id.
    """
    out = []
    cursor = launchpad.workflows.find(dict(query or {}),
                                      {"nodes": 1, "name": 1, "state": 1, "metadata": 1,
                                       "created_on": 1, "updated_on": 1})
    docs = sorted(cursor, key=lambda d: min(d.get("nodes") or [0]), reverse=True)
    if limit:
        docs = docs[:limit]
    all_ids = [i for wf in docs for i in wf.get("nodes") or []]
    fws = {d["fw_id"]: d for d in launchpad.fireworks.find(
        {"fw_id": {"$in": all_ids}},
        {"fw_id": 1, "name": 1, "state": 1, "spec._category": 1, "spec._tasks.job.uuid": 1,
         "launches": 1},
    )}
    last_launch = {d["fw_id"]: d["launches"][-1] for d in fws.values() if d.get("launches")}
    launch_dirs = {d["launch_id"]: d.get("launch_dir") for d in launchpad.launches.find(
        {"launch_id": {"$in": list(last_launch.values())}}, {"launch_id": 1, "launch_dir": 1})}
    for wf in docs:
        nodes = sorted(wf.get("nodes") or [])
        jobs = []
        for fw_id in nodes:
            doc = fws.get(fw_id, {"fw_id": fw_id})
            spec = doc.get("spec", {})
            tasks = spec.get("_tasks") or [{}]
            jobs.append({
                "fw_id": fw_id, "name": doc.get("name"), "state": doc.get("state"),
                "job_uuid": (tasks[0].get("job") or {}).get("uuid"),
                "category": spec.get("_category"),
                "launch_dir": launch_dirs.get(last_launch.get(fw_id, -1)),
            })
        out.append({
            "name": wf.get("name"), "state": wf.get("state"), "wf_id": min(nodes or [0]),
            "key": (wf.get("metadata") or {}).get(DEDUP_METADATA_KEY),
            "created_on": _iso(wf.get("created_on")), "updated_on": _iso(wf.get("updated_on")),
            "jobs": jobs,
        })
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def rerun_fireworks(launchpad: Any, *, fw_ids: Sequence[int] | None = None,
                    fizzled: bool = False, recover: str | None = None) -> list[int]:
    """Reset Fireworks to READY so that the next launch runs them again.

    Parameters
    ----------
    fw_ids
        Fireworks to rerun (any state).
    fizzled
        Also every FIZZLED Firework on the LaunchPad.
    recover
        None: start afresh in a new directory.  ``"prev_dir"``: run again
        in the failed launch's directory (QE restart files are reused);
        ``"cp"``: copy that directory's files into the new one.  FireWorks'
        ``rerun_fw(recover_launch="last", recover_mode=...)``.

    Returns
    -------
    list of int
        Ids of every Firework reset (children of a rerun Firework go back
        to WAITING and are not listed).  jobflow runs a rerun job with the
        same uuid and index, so its output document replaces the old one.

    Raises
    ------
    ValueError
        When nothing was asked for or ``recover`` is not one of the modes.
    """
    if recover not in (None, "prev_dir", "cp"):
        raise ValueError(f"recover must be None, 'prev_dir' or 'cp', not {recover!r}")
    targets = list(fw_ids or [])
    if fizzled:
        targets += [int(i) for i in launchpad.get_fw_ids({"state": "FIZZLED"})]
    if not targets:
        if fizzled:
            return []
        raise ValueError("nothing to rerun: give Firework ids or ask for the fizzled ones")
    done: list[int] = []
    for fw_id in dict.fromkeys(targets):
        kwargs: dict[str, Any] = {}
        if recover is not None:
            kwargs = {"recover_launch": "last", "recover_mode": recover}
        done += [int(i) for i in launchpad.rerun_fw(int(fw_id), **kwargs) or [fw_id]]
    return list(dict.fromkeys(done))

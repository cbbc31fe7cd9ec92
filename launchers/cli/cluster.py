"""Cluster commands: ``config init``, ``store check``, ``launch``, ``status``, ``rerun``.

Also :func:`add_submit_parser`, which the ``dfpt`` command group calls to add
``bete dfpt submit STRUCTURES... --preset P``.

Configuration files are looked up like FireWorks does: an explicit
``--launchpad/--fworker/--qadapter FILE``, else ``./my_launchpad.yaml`` (...)
in the working directory, else FireWorks' own lookup (``FW_CONFIG_FILE``,
``~/.fireworks``).  bete's settings come from ``BETE_CONFIG_FILE``, else
``./bete_settings.yaml`` (see :func:`stores.settings.config_file`), the store
from ``--store``, else the settings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from launchers.cli.common import UserError, add_format_argument, format_rows, progress
from launchers.cli.elph_args import add_elph_arguments, maker_from_args, read_structures

logger = logging.getLogger(__name__)

RESOURCES_FILE = "bete_resources.yaml"


# ----------------------------------------------------------------------- helpers
def _group(subparsers: argparse._SubParsersAction, name: str, help_text: str
           ) -> argparse._SubParsersAction:
    """Sub-command group ``name``, reusing one another module already added."""
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    sub.required = True
    return sub


def _add_launchpad_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--launchpad", "-l", metavar="FILE",
                   help="LaunchPad file (default: ./my_launchpad.yaml, else FireWorks' lookup)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the database server (default 5)")


@contextlib.contextmanager
def _launchpad(args: argparse.Namespace) -> Iterator[Any]:
    """The LaunchPad of ``--launchpad`` (user errors → UserError), flushed afterwards."""
    from launchers.fireworks import LaunchPadError, close_launchpad, load_launchpad

    try:
        lp = load_launchpad(args.launchpad, timeout_s=args.timeout)
    except LaunchPadError as exc:
        raise UserError(str(exc)) from None
    try:
        yield lp
    finally:
        close_launchpad(lp)


def _job_store(spec: str | None, timeout_s: float = 5.0) -> Any:
    from stores.check import StoreUnreachableError, ping_store
    from stores.config import StoreConfigError, load_job_store

    try:
        ping_store(spec, timeout_s=timeout_s)
        return load_job_store(spec)
    except (StoreConfigError, StoreUnreachableError) as exc:
        raise UserError(str(exc)) from None


# -------------------------------------------------------------------- config init
def _cmd_config_init(args: argparse.Namespace) -> int:
    from launchers.configs import (
        CONFIG_FILES,
        LOCAL_CONFIG_FILES,
        LOCAL_LAUNCHPAD_DB,
        ConfigExistsError,
        init_configs,
    )

    try:
        written = init_configs(args.directory, scheduler=args.scheduler, force=args.force,
                               cluster_name=args.name, local=args.local)
    except ConfigExistsError as exc:
        raise UserError(str(exc)) from None
    described = LOCAL_CONFIG_FILES if args.local else CONFIG_FILES
    for path in written:
        print(f"{path}  # {described[path.name]}")
    directory = written[0].parent
    if args.local:
        progress(f"next: cd {directory} && bete dfpt submit STRUCTURE.cif && bete launch "
                 "rapidfire && bete query (results in ./store; FireWorks state in "
                 f"{LOCAL_LAUNCHPAD_DB}, one bete process at a time)")
        return 0
    progress(f"next: edit {directory}/my_launchpad.yaml and bete_store.yaml (host, database; "
             "credentials via ${VAR}), then run `bete store check` in that directory (bete reads "
             "./bete_settings.yaml there; elsewhere export "
             f"BETE_CONFIG_FILE={directory}/bete_settings.yaml)")
    return 0


# -------------------------------------------------------------------- store check
def _cmd_store_check(args: argparse.Namespace) -> int:
    from stores.check import StoreUnreachableError, check_store
    from stores.config import StoreConfigError, describe_store_spec

    try:
        described = describe_store_spec(args.store)
        report = check_store(args.store, timeout_s=args.timeout)
    except (StoreConfigError, StoreUnreachableError) as exc:
        raise UserError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=1))
        return 0
    print(f"store:     {described['kind']} at {report.address}")
    for name, info in report.stores.items():
        print(f"  {name:<9}{info['type']}  {info['location']}")
    print("reachable: yes")
    if report.note:
        print(f"note:      {report.note}")
    print(f"documents: {report.total}")
    rows = [{"doc_type": k, "count": v} for k, v in report.counts.items()]
    rows += [{"doc_type": f"[{k} store objects]", "count": v} for k, v in report.blobs.items()]
    if rows:
        print(format_rows(rows, "table", columns=["doc_type", "count"]))
    return 0


# ------------------------------------------------------------------------- launch
def _cmd_launch(args: argparse.Namespace) -> int:
    from launchers import fireworks as fw

    offline_single = args.mode == "singleshot" and args.offline
    try:
        fworker = fw.load_fworker(args.fworker)
    except fw.LaunchPadError as exc:
        raise UserError(str(exc)) from None
    if offline_single:  # compute node without the database: no LaunchPad at all
        store = _job_store(args.store, args.timeout)
        try:
            ran = fw.launch_singleshot(None, fworker=fworker, store=store, offline=True,
                                       launch_dir=args.launch_dir)
        except fw.LaunchPadError as exc:
            raise UserError(str(exc)) from None
        return 0 if ran else 1
    with _launchpad(args) as lp:
        if args.mode == "recover-offline":
            name = fworker.name if args.fworker else None
            recovered, failed = fw.recover_offline(lp, fworker_name=name)
            print(json.dumps({"recovered": recovered, "failed": failed}))
            return 1 if failed else 0
        if args.mode == "queue":
            try:
                qadapter = fw.load_qadapter(args.qadapter)
                fw.launch_queue(lp, qadapter, fworker=fworker, nlaunches=args.nlaunches,
                                launch_dir=args.launch_dir or ".", njobs_queue=args.njobs_queue,
                                reserve=args.reserve, offline=args.offline,
                                timeout_s=args.max_time, sleep_time_s=args.sleep)
            except fw.LaunchPadError as exc:
                raise UserError(str(exc)) from None
            return 0
        store = _job_store(args.store, args.timeout)
        if args.mode == "singleshot":
            ran = fw.launch_singleshot(lp, fworker=fworker, store=store, fw_id=args.fw_id,
                                       launch_dir=args.launch_dir)
            if not ran:
                progress("nothing to run: no READY Firework for this worker")
            return 0
        fw.launch_rapidfire(lp, fworker=fworker, store=store, nlaunches=args.nlaunches,
                            launch_dir=args.launch_dir, timeout_s=args.max_time,
                            sleep_time_s=args.sleep)
    return 0


# ------------------------------------------------------------------------- status
def _cmd_status(args: argparse.Namespace) -> int:
    from launchers.fireworks import workflow_status

    query: dict[str, Any] = {}
    if args.state:
        query["state"] = args.state.upper()
    if args.name:
        query["name"] = {"$regex": args.name}
    with _launchpad(args) as lp:
        flows = workflow_status(lp, query=query, limit=args.limit)
    if args.format == "json":
        print(json.dumps(flows, indent=1))
        return 0
    if args.jobs:
        rows = [{"wf_id": f["wf_id"], "flow": f["name"], "fw_id": j["fw_id"], "job": j["name"],
                 "state": j["state"], "category": j["category"]}
                for f in flows for j in f["jobs"]]
        print(format_rows(rows, "table",
                          columns=["wf_id", "flow", "fw_id", "job", "state", "category"]))
        return 0
    rows = []
    for f in flows:
        counts = Counter(j["state"] for j in f["jobs"])
        rows.append({"wf_id": f["wf_id"], "name": f["name"], "state": f["state"],
                     "jobs": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
                     "updated": (f["updated_on"] or "")[:19]})
    print(format_rows(rows, "table", columns=["wf_id", "name", "state", "jobs", "updated"]))
    return 0


# -------------------------------------------------------------------------- rerun
def _cmd_rerun(args: argparse.Namespace) -> int:
    from launchers.fireworks import rerun_fireworks

    if not args.fizzled and not args.fw_id:
        raise UserError("say what to rerun: --fizzled and/or --fw-id ID")
    with _launchpad(args) as lp:
        try:
            ids = rerun_fireworks(lp, fw_ids=args.fw_id, fizzled=args.fizzled,
                                  recover=args.recover)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    print(json.dumps({"rerun": ids}))
    progress(f"{len(ids)} Firework(s) reset to READY; run `bete launch ...` to run them"
             if ids else "nothing to rerun")
    return 0


# ------------------------------------------------------------------------- submit
def _flows_from_args(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(label, flow) per structure, from the arguments ``bete dfpt run`` takes too."""
    structures = read_structures(args.structures)
    maker = maker_from_args(args)
    flows = []
    for label, structure in structures:
        try:
            flows.append((label, maker.make(structure, source_id=label)))
        except (ValueError, OSError) as exc:  # BeteInputError is a ValueError
            raise UserError(f"{label}: {exc}") from None
    return flows


def submit_command(args: argparse.Namespace) -> int:
    """``bete dfpt submit``: make one flow per structure and add them to the LaunchPad."""
    from launchers import fireworks as fw
    from launchers.configs import load_resources
    from stores.config import (
        StoreConfigError,
        load_job_store,
        mask_text,
        resolve_store_spec,
        store_secrets,
    )

    resources_file = args.resources or (RESOURCES_FILE if Path(RESOURCES_FILE).is_file()
                                        else None)
    resources = None
    if resources_file:
        try:
            resources = load_resources(resources_file)
            for spec in resources.values():
                fw.resources_to_spec(spec)  # validate before anything is submitted
        except (OSError, ValueError) as exc:
            raise UserError(f"{resources_file}: {exc}") from None
    store = None
    if args.store:
        try:
            store = load_job_store(resolve_store_spec(args.store))
        except StoreConfigError as exc:
            raise UserError(str(exc)) from None
        if store_secrets(store):
            raise UserError(
                f"--store {mask_text(str(args.store))} holds credentials, which would be "
                "written into every "
                "Firework on the LaunchPad; configure the store on the workers instead "
                "(`store:` in bete_settings.yaml or BETE_STORE) and submit without --store"
            )
    flows = _flows_from_args(args)
    dedup = None if args.no_dedup else args.dedup_key
    if args.dry_run:
        rows = []
        for label, flow in flows:
            fw.apply_resources(flow, resources)
            for job in fw.iter_jobs(flow):
                config = job.config.manager_config
                rows.append({"structure": label, "flow": flow.name, "job": job.name,
                             "category": config.get("_category"),
                             "queue": (config.get("_queueadapter") or {}).get("queue"),
                             "key": (fw.dedup_key_for(flow, dedup) or "")[:16]})
        print(format_rows(rows, args.format))
        return 0
    with _launchpad(args) as lp:
        try:
            results = fw.submit_flows([f for _, f in flows], lp, store=store,
                                      resources=resources, dedup_key=dedup,
                                      metadata={"preset": args.preset})
        except fw.LaunchPadError as exc:
            raise UserError(str(exc)) from None
    rows = []
    for (label, _), result in zip(flows, results, strict=True):
        row = {"structure": label, **result.as_dict()}
        if args.format != "json":
            row["fw_ids"] = " ".join(map(str, result.fw_ids))
            row["key"] = (result.key or "")[:16]
        rows.append(row)
    print(format_rows(rows, args.format,
                      columns=["structure", "name", "added", "state", "fw_ids", "key"]))
    added = sum(r.added for r in results)
    progress(f"{added} workflow(s) added, {len(results) - added} already on the LaunchPad; "
             "next: `bete launch queue` (cluster) or `bete launch rapidfire` (here)")
    return 0


def add_submit_parser(dfpt_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``submit`` to the ``bete dfpt`` group (the arguments of ``bete dfpt run``).

    Parameters
    ----------
    dfpt_subparsers
        The sub-parsers action of the ``dfpt`` command.

    Returns
    -------
    argparse.ArgumentParser
        The ``submit`` parser.
    """
    p = dfpt_subparsers.add_parser(
        "submit", help="submit DFPT electron-phonon flows to the FireWorks LaunchPad",
        description="Make one DFPT electron-phonon flow per structure and add it to the "
        "LaunchPad; a structure whose flow (same input hash) is already there is not added "
        "again. Workers run them with `bete launch`; they write to the store configured on "
        "the worker unless --store names a store without credentials.")
    add_elph_arguments(p)
    for action in p._actions:  # same flag, submit-specific meaning
        if action.dest == "store":
            action.help = ("embed this store in the workflows (only stores without "
                           "credentials); default: each worker uses its configured store")
    _add_launchpad_arg(p)
    p.add_argument("--resources", metavar="FILE",
                   help=f"job-name pattern -> queue/category file (default ./{RESOURCES_FILE} "
                   "if present)")
    p.add_argument("--dedup-key", default="input_hash",
                   help="metadata key identifying duplicate work (default input_hash)")
    p.add_argument("--no-dedup", action="store_true", help="submit even if already there")
    p.add_argument("--dry-run", action="store_true",
                   help="list the jobs and their queues; submit nothing")
    add_format_argument(p)
    p.set_defaults(func=submit_command)
    return p


# ----------------------------------------------------------------------- register
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``config``, ``store check``, ``launch``, ``status`` and ``rerun``."""
    config = _group(subparsers, "config", "configuration files for running on a cluster")
    p = config.add_parser("init", help="write commented FireWorks/store/settings templates",
                          description="Write my_launchpad.yaml, my_fworker.yaml, "
                          "my_qadapter*.yaml, bete_store.yaml, bete_resources.yaml and "
                          "bete_settings.yaml into DIR. Existing files are kept unless --force.")
    p.add_argument("directory", metavar="DIR", help="folder to write the files into")
    p.add_argument("--scheduler", choices=["slurm", "pbs"], default="slurm",
                   help="which queue adapter becomes my_qadapter.yaml (default slurm)")
    p.add_argument("--name", help="FireWorks worker name (default: host name)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--local", action="store_true",
                   help="a ready set-up for this machine instead of cluster templates: "
                        "FireWorks' mongomock file LaunchPad (no MongoDB), mpirun on this "
                        "machine's cores, the embedded store DIR/store; then `bete dfpt submit "
                        "X && bete launch rapidfire` work in DIR")
    p.set_defaults(func=_cmd_config_init)

    store = _group(subparsers, "store", "the results store")
    p = store.add_parser("check", help="what store is configured, is it reachable, what it holds",
                         description="Report the configured store (secrets masked), whether it "
                         "can be reached and how many documents of each doc_type it holds. "
                         "Exit status 2 with one line when it cannot be reached.")
    p.add_argument("--store", help="directory, mongodb:// URI or YAML spec (default: settings)")
    add_format_argument(p, ("table", "json"))
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for a MongoDB server (default 5)")
    p.set_defaults(func=_cmd_store_check)

    p = subparsers.add_parser(
        "launch", help="run FireWorks workers here or submit them to the queue",
        description="rapidfire: run Fireworks here until none is READY; singleshot: run one; "
        "queue: submit queue jobs that run `rocket_launch` of the queue adapter; "
        "recover-offline: copy results of --offline launches back into the LaunchPad.")
    p.add_argument("mode", choices=["rapidfire", "singleshot", "queue", "recover-offline"],
                   help="how to launch (see above)")
    _add_launchpad_arg(p)
    p.add_argument("--fworker", "-w", metavar="FILE",
                   help="worker file (default: ./my_fworker.yaml, else FireWorks' lookup)")
    p.add_argument("--qadapter", "-q", metavar="FILE",
                   help="queue adapter (default: ./my_qadapter.yaml, else FireWorks' lookup)")
    p.add_argument("--store", help="store jobs write to (default: the settings' store)")
    p.add_argument("--nlaunches", type=int, default=0,
                   help="Fireworks (rapidfire) or queue jobs (queue) to launch; 0 = until "
                   "nothing is READY")
    p.add_argument("--njobs-queue", type=int, default=0,
                   help="queue: stop submitting while this many jobs are queued (0 = no limit)")
    p.add_argument("--launch-dir", metavar="DIR", help="where launcher_* directories go")
    p.add_argument("--fw-id", "--fw_id", type=int, help="singleshot: run this Firework")
    p.add_argument("--reserve", action="store_true",
                   help="queue: reservation mode, one Firework per queue job with its own "
                   "queue/walltime/cores from the resources")
    p.add_argument("--offline", action="store_true",
                   help="queue: compute nodes need not reach the LaunchPad (implies --reserve); "
                   "singleshot: run the FW_offline.json of this directory")
    p.add_argument("--max-time", type=float, metavar="S",
                   help="stop launching after this many seconds")
    p.add_argument("--sleep", type=int, default=5, metavar="S",
                   help="seconds between polls of the LaunchPad (default 5)")
    p.set_defaults(func=_cmd_launch)

    p = subparsers.add_parser("fw-status", aliases=["status"],
                              help="FireWorks: workflows on the LaunchPad and their jobs' states "
                              "(old name: status; for active learning see `bete al status`)",
                              description="Flows (FireWorks workflows on the LaunchPad), newest "
                              "first, with their state and the state of each job. Active-learning "
                              "rounds are listed by `bete al status`.")
    _add_launchpad_arg(p)
    add_format_argument(p, ("table", "json"))
    p.add_argument("--state", help="only workflows in this state (READY, RUNNING, FIZZLED, "
                   "COMPLETED, ...)")
    p.add_argument("--name", help="only workflows whose name matches this regular expression")
    p.add_argument("--limit", type=int, default=0, help="at most N workflows (0 = all)")
    p.add_argument("--jobs", action="store_true", help="table: one row per job")
    p.set_defaults(func=_cmd_status)

    p = subparsers.add_parser(
        "rerun", help="reset FIZZLED (or chosen) jobs so that workers run them again",
        description="FireWorks rerun: the Firework goes back to READY and its children to "
        "WAITING; the job runs again with the same uuid, so its output document replaces "
        "the old one. --recover prev_dir reruns in the failed job's directory (QE restart "
        "files reused).")
    _add_launchpad_arg(p)
    p.add_argument("--fizzled", action="store_true", help="every FIZZLED Firework")
    p.add_argument("--fw-id", type=int, action="append", metavar="ID",
                   help="this Firework (repeatable)")
    p.add_argument("--recover", choices=["prev_dir", "cp"],
                   help="rerun in (prev_dir) or from a copy of (cp) the last launch directory")
    p.set_defaults(func=_cmd_rerun)


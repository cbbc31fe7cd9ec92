"""What the LaunchPad holds (workflows and their jobs' states) and resetting Fireworks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from launchers.fireworks.submit import DEDUP_METADATA_KEY


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

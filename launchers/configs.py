"""Configuration files for running on a cluster (``bete config init DIR``).

Writes commented templates for FireWorks (``my_launchpad.yaml``,
``my_fworker.yaml``, ``my_qadapter.yaml`` plus SLURM and PBS variants), the
results store (``bete_store.yaml``, MongoDB + GridFS with S3 commented), the
job-name → queue mapping (``bete_resources.yaml``) and bete's own settings
(``bete_settings.yaml``, every field of
:class:`stores.settings.BeteSettings` with its description).

The templates live in ``launchers/templates``; ``@CONFIG_DIR@`` is replaced by
the absolute target directory, so queue scripts find the files from any
launch directory.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PACKAGE = "launchers.templates"
SCHEDULERS = ("slurm", "pbs")
#: Settings that differ on a cluster from the workstation defaults.
CLUSTER_SETTINGS: dict[str, Any] = {
    "mpi_cmd": "srun",
    "mpi_np_flag": "-n",
    "mpi_extra_args": "",
    "nprocs": 32,
    "scratch_dir": "/scratch/${USER}/bete",
}
PBS_SETTINGS: dict[str, Any] = {"mpi_cmd": "mpirun", "mpi_np_flag": "-np"}

#: Files written, in order, with a one-line description.
CONFIG_FILES: dict[str, str] = {
    "my_launchpad.yaml": "FireWorks LaunchPad (MongoDB holding the workflows)",
    "my_fworker.yaml": "FireWorks worker (name, category)",
    "my_qadapter.yaml": "queue adapter used by `bete launch queue` (the chosen scheduler)",
    "my_qadapter_slurm.yaml": "queue adapter, SLURM variant",
    "my_qadapter_pbs.yaml": "queue adapter, PBS variant",
    "bete_store.yaml": "results store: MongoStore + GridFSStore (S3Store commented)",
    "bete_resources.yaml": "job-name patterns -> worker category / queue / walltime / cores",
    "bete_settings.yaml": "bete settings (QE commands, MPI launcher, store, pseudopotentials)",
}


#: The mongomock LaunchPad's data file of a local set-up.
LOCAL_LAUNCHPAD_DB = "launchpad.json"
LOCAL_LAUNCHPAD_TEXT = f"""\
# FireWorks LaunchPad without a server, written by `bete config init --local`.
# `mongomock_file` (a bete key) makes bete commands use FireWorks' mongomock file mode with
# the data in {LOCAL_LAUNCHPAD_DB} next to this file. One bete process at a time; a killed
# process loses its changes: for trying FireWorks out, not for real campaigns (use MongoDB).
host: localhost
port: 27017
name: bete_local
mongomock_file: {LOCAL_LAUNCHPAD_DB}
strm_lvl: INFO
"""


class ConfigExistsError(FileExistsError):
    """Refused to overwrite configuration files (use ``force=True``)."""


def template_text(name: str) -> str:
    """The raw text of one packaged template."""
    return resources.files(TEMPLATE_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def _fill(text: str, config_dir: Path, cluster_name: str) -> str:
    return text.replace("@CONFIG_DIR@", str(config_dir)).replace("@CLUSTER_NAME@", cluster_name)


def _yaml_value(value: Any) -> str:
    """One YAML scalar (JSON is valid YAML and quotes what needs quoting)."""
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False)


def local_settings(config_dir: Path) -> dict[str, Any]:
    """Settings of a one-machine set-up: mpirun on this machine's cores, the embedded store."""
    return {"mpi_cmd": "mpirun", "mpi_np_flag": "-np", "mpi_extra_args": "",
            "nprocs": max(1, os.cpu_count() or 1), "store": str(config_dir / "store"),
            "scratch_dir": str(config_dir / "scratch")}


def settings_text(config_dir: Path, scheduler: str = "slurm",
                  overrides: dict[str, Any] | None = None) -> str:
    """``bete_settings.yaml``: every BeteSettings field, its description, a cluster value.

    ``overrides`` replaces the cluster values (``bete config init --local``).
    """
    from stores.settings import BeteSettings

    if overrides is None:
        overrides = dict(CLUSTER_SETTINGS)
        if scheduler == "pbs":
            overrides.update(PBS_SETTINGS)
        overrides["store"] = str(config_dir / "bete_store.yaml")
    lines = [
        "# bete settings, written by `bete config init`.",
        "# Used when BETE_CONFIG_FILE points here (the queue adapters' pre_rocket sets it):",
        f"#   export BETE_CONFIG_FILE={config_dir / 'bete_settings.yaml'}",
        "# Environment variables BETE_<KEY> override these values (e.g. BETE_NPROCS=64).",
        "# `${USER}` style references are NOT expanded here except inside the store spec.",
        "",
    ]
    for name, info in BeteSettings.model_fields.items():
        value = overrides.get(name, info.default)
        if name == "scratch_dir":
            value = str(value).replace("${USER}", os.environ.get("USER") or "me")
        if info.description:
            lines.append(f"# {info.description}")
        lines.append(f"{name}: {_yaml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def render_configs(config_dir: str | os.PathLike[str], *, scheduler: str = "slurm",
                   cluster_name: str | None = None) -> dict[str, str]:
    """File name → text of every configuration file for ``config_dir``.

    Parameters
    ----------
    config_dir
        Target directory (made absolute; written into the templates).
    scheduler
        ``"slurm"`` or ``"pbs"``: which variant becomes ``my_qadapter.yaml``.
    cluster_name
        FireWorks worker name (default: the host name).

    Raises
    ------
    ValueError
        For an unknown scheduler.
    """
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; use one of {', '.join(SCHEDULERS)}")
    target = Path(config_dir).expanduser().resolve()
    name = cluster_name or os.uname().nodename.split(".")[0] or "cluster"
    out: dict[str, str] = {}
    for filename in CONFIG_FILES:
        if filename == "bete_settings.yaml":
            out[filename] = settings_text(target, scheduler)
        elif filename == "my_qadapter.yaml":
            out[filename] = _fill(template_text(f"my_qadapter_{scheduler}.yaml"), target, name)
        else:
            out[filename] = _fill(template_text(filename), target, name)
    return out


#: Files of ``bete config init --local``: FireWorks without a server, on this machine.
LOCAL_CONFIG_FILES: dict[str, str] = {
    "my_launchpad.yaml": "FireWorks LaunchPad in mongomock file mode (no MongoDB server)",
    LOCAL_LAUNCHPAD_DB: "the mongomock LaunchPad's data (one bete process at a time)",
    "my_fworker.yaml": "FireWorks worker (runs every Firework)",
    "bete_settings.yaml": "bete settings: mpirun on this machine's cores, embedded store ./store",
}


def render_local_configs(config_dir: str | os.PathLike[str],
                         cluster_name: str | None = None) -> dict[str, str]:
    """File name → text for a ready one-machine FireWorks set-up in ``config_dir``.

    ``bete dfpt submit X && bete launch rapidfire`` then work in that folder: the
    LaunchPad is FireWorks' mongomock file mode (``mongomock_file``, read by
    :func:`launchers.fireworks.load_launchpad`), QE runs through ``mpirun`` on
    this machine's cores, results go into the embedded store ``store/``.
    """
    target = Path(config_dir).expanduser().resolve()
    name = cluster_name or os.uname().nodename.split(".")[0] or "local"
    return {
        "my_launchpad.yaml": LOCAL_LAUNCHPAD_TEXT,
        LOCAL_LAUNCHPAD_DB: "{}\n",
        "my_fworker.yaml": _fill(template_text("my_fworker.yaml"), target, name),
        "bete_settings.yaml": settings_text(target, overrides=local_settings(target)),
    }


def init_configs(config_dir: str | os.PathLike[str], *, scheduler: str = "slurm",
                 force: bool = False, cluster_name: str | None = None,
                 local: bool = False) -> list[Path]:
    """Write the configuration files into ``config_dir`` (created if missing).

    Parameters
    ----------
    local
        Write the one-machine set-up (:func:`render_local_configs`) instead of the
        cluster templates.
    force
        Overwrite existing files; otherwise refuse if any exists (nothing is
        written then).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ConfigExistsError
        When a file exists and ``force`` is False (the message lists them).
    """
    target = Path(config_dir).expanduser().resolve()
    texts = (render_local_configs(target, cluster_name) if local else
             render_configs(target, scheduler=scheduler, cluster_name=cluster_name))
    existing = [target / f for f in texts if (target / f).exists()]
    if existing and not force:
        raise ConfigExistsError(
            f"{len(existing)} file(s) already exist in {target} "
            f"({', '.join(p.name for p in existing)}); use --force to overwrite them"
        )
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in texts.items():
        path = target / filename
        path.write_text(text, encoding="utf-8")
        if filename in {"my_launchpad.yaml", "bete_store.yaml"}:
            path.chmod(0o600)  # they may end up holding credentials
        written.append(path)
    return written


def load_resources(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a ``bete_resources.yaml`` (pattern → resources mapping, order kept).

    Raises
    ------
    ValueError
        When the file is not a mapping of patterns to mappings.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} must map job-name patterns to resource mappings "
                         "(see `bete config init`)")
    return {str(k): v for k, v in data.items()}

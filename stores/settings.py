"""Project settings: environment variables (prefix ``BETE_``) over a YAML file.

The YAML file is the first of ``$BETE_CONFIG_FILE``, ``./bete_settings.yaml``
(in the working directory, where ``bete config init`` writes one) and
``~/.config/bete/settings.yaml`` (see :func:`config_file`).  Settings are read
at call time (:func:`get_settings`), never frozen into default argument values,
so the same flow runs here (``mpirun -np 2``) and on a cluster (``srun``) by
changing the environment of the worker.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CONFIG_FILE = Path("~/.config/bete/settings.yaml")
LOCAL_CONFIG_FILE = "bete_settings.yaml"
CONFIG_FILE_ENV = "BETE_CONFIG_FILE"


def config_file() -> Path:
    """Path of the YAML settings file, looked up now (may not exist).

    Returns
    -------
    pathlib.Path
        ``$BETE_CONFIG_FILE`` when set (and not empty), even if that file does
        not exist; else ``./bete_settings.yaml`` when the working directory
        holds one; else ``~/.config/bete/settings.yaml``.
    """
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    local = Path.cwd() / LOCAL_CONFIG_FILE
    if local.is_file():
        return local
    return DEFAULT_CONFIG_FILE.expanduser()


@contextlib.contextmanager
def pinned_config_file() -> Iterator[Path]:
    """Keep the settings file found now while the working directory changes.

    A FireWorks worker runs each job in a new ``launcher_*`` directory, where
    ``./bete_settings.yaml`` of the directory it was started in is not found
    any more.  Inside this context ``BETE_CONFIG_FILE`` names the file
    :func:`config_file` finds on entry (for child processes too); the
    environment is restored on exit.

    Yields
    ------
    pathlib.Path
        The pinned settings file (may not exist).
    """
    path = config_file().resolve()
    previous = os.environ.get(CONFIG_FILE_ENV)
    os.environ[CONFIG_FILE_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(CONFIG_FILE_ENV, None)
        else:
            os.environ[CONFIG_FILE_ENV] = previous


class BeteSettings(BaseSettings):
    """Settings for running QE, choosing stores and pseudopotentials."""

    model_config = SettingsConfigDict(env_prefix="BETE_", extra="ignore")

    # --- running QE ---
    pw_cmd: str = Field("pw.x", description="pw.x executable (name on PATH or full path).")
    ph_cmd: str = Field("ph.x", description="ph.x executable.")
    q2r_cmd: str = Field("q2r.x", description="q2r.x executable.")
    matdyn_cmd: str = Field("matdyn.x", description="matdyn.x executable.")
    mpi_cmd: str | None = Field(
        "mpirun",
        description="MPI launcher ('mpirun', 'srun', ...); empty/None runs serially.",
    )
    mpi_np_flag: str = Field("-np", description="Flag giving the process count ('-n' for srun).")
    mpi_extra_args: str = Field(
        "", description="Extra launcher arguments, e.g. '--allow-run-as-root' or '--bind-to none'."
    )
    nprocs: int = Field(2, description="MPI processes per QE run.")
    npool: int | None = Field(
        None, description="k-point pools (-nk); default: nprocs when it divides the k points."
    )
    qe_timeout_s: float | None = Field(
        None, description="Wall-clock limit for one QE executable run (seconds), None = none."
    )
    qe_max_seconds: float | None = Field(
        None, description="pw.x/ph.x max_seconds: QE stops cleanly before a batch walltime "
        "so that a rerun resumes (ph.x recover); None = no limit.",
    )
    # --- data ---
    store: str = Field(
        "~/.bete/store",
        description="Default store: a directory (embedded MontyStore) or a YAML store spec.",
    )
    pseudo_family: str | None = Field(
        None,
        description="Pseudopotential family: a directory or an SSSP-style JSON; "
        "None = Debian's /usr/share/espresso/pseudo.",
    )
    max_atoms: int = Field(16, description="Refuse cells with more atoms than this.")
    scratch_dir: str = Field(
        "~/.bete/scratch", description="Where QE runs (outdir, pseudo links, outputs)."
    )

    @classmethod
    def load(cls, **overrides: Any) -> BeteSettings:
        """Read the YAML file (if any), then the environment, then ``overrides``."""
        data: dict[str, Any] = {}
        path = config_file()
        if path.is_file():
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path} must hold a mapping of setting names to values.")
            data.update({k.lower(): v for k, v in loaded.items()})
        env = cls()  # environment wins over the file
        for name in cls.model_fields:
            if f"BETE_{name.upper()}" in os.environ:
                data[name] = getattr(env, name)
        data.update(overrides)
        return cls.model_validate(data) if data else env


def get_settings(**overrides: Any) -> BeteSettings:
    """Current settings, read now (file + environment + overrides)."""
    return BeteSettings.load(**overrides)

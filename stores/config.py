"""Store configuration: one spec selects the embedded or the production store.

A *store spec* is either

- a directory: the embedded default, maggma ``MontyStore`` collections with
  SQLite storage in that directory (created if missing); or
- a YAML file describing a jobflow ``JobStore`` (``docs_store`` plus
  ``additional_stores``, e.g. MongoStore + GridFSStore/S3Store), the layout
  of jobflow's ``JobStore.from_file``.

Documents go into the ``docs`` store; large arrays (α²F, phonon DOS, model
checkpoints) into the additional store named ``data``.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobflow import JobStore
from maggma.stores import MontyStore

DOCS_COLLECTION = "outputs"
BLOBS_COLLECTION = "outputs_blobs"


def default_store_spec() -> str:
    """The store spec from the settings (``BETE_STORE`` or the YAML file)."""
    from workflows.settings import get_settings  # settings live with the flows

    return get_settings().store


def embedded_store(directory: str | os.PathLike[str]) -> JobStore:
    """A JobStore on MontyStore/SQLite in ``directory`` (created if missing)."""
    path = Path(directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    docs = MontyStore(DOCS_COLLECTION, database_path=str(path), storage="sqlite", key="uuid")
    blobs = MontyStore(BLOBS_COLLECTION, database_path=str(path), storage="sqlite",
                       key="blob_uuid")
    return JobStore(docs, additional_stores={"data": blobs})


def load_job_store(spec: str | os.PathLike[str] | None = None) -> JobStore:
    """Build the JobStore a spec names (None = the settings' default).

    Raises
    ------
    ValueError
        When the spec is neither a directory nor a readable YAML store spec.
    """
    spec = spec if spec is not None else default_store_spec()
    path = Path(spec).expanduser()
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        if not path.is_file():
            raise ValueError(f"store spec {path} does not exist; give a directory or a YAML file")
        return JobStore.from_file(str(path))
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"store {path} is a file but not a YAML store spec; give a directory "
            "(embedded store) or a .yaml spec"
        )
    return embedded_store(path)

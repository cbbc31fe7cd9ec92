"""Trained BETE-NET ensembles in a store: one blob of files plus one model document.

An ensemble folder (``ensemble.json``, ``member_XXX.pt`` state_dicts,
``member_XXX.json`` records; see :mod:`betenet_model.checkpoint`) is put into a
JobStore as

- one **blob** in the ``data`` additional store (GridFS/S3 in production,
  SQLite for the embedded store), keyed by ``blob_uuid``::

      {"blob_uuid": ..., "model_id": ..., "files": [{"name", "sha256", "size_bytes",
                                                      "data": <base64>}, ...]}

  Files are a list (not a name → content mapping) because their names hold
  dots, which MongoDB field names should not;
- one :class:`~stores.schemas.ModelDocument` (``doc_type`` "model") in the docs
  store, written by :func:`stores.records.write_model_document`,
  with ``blob_uuid`` and ``files`` (name, sha256, size) and ``path`` None.

Weights stay ``state_dict`` files (never pickled modules); the manifest holds the
configuration, the versions and the training-set hash.  Both rows are keyed by the
model id (:func:`model_id_from_manifest`), so putting the same ensemble again
replaces them in place.  :func:`get_ensemble_dir` writes the files back into a
cache folder (sha256 of every file checked) that ``Ensemble.load`` reads on CPU.

On the command line a stored ensemble is named ``store:MODEL_ID``
(:data:`STORE_PREFIX`)::

    bete train --data fast-v1 --out runs/cso --store ./mystore   # prints the model id
    bete model list --store ./mystore
    bete predict Al.cif --model store:cso-0123456789ab-m5-a1b2c3 --store ./mystore

This module imports no torch (the ``stores`` package stays torch-free).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stores.constants import DEFAULT_VARIANT
from stores.records import write_model_document
from stores.schemas import ModelDocument, ModelFile
from stores.settings import get_settings

STORE_PREFIX = "store:"
"""``--model store:MODEL_ID`` names an ensemble in a store (a folder never starts so)."""
MANIFEST = "ensemble.json"
BLOB_STORE = "data"
_FILE_NAME = re.compile(r"^(ensemble\.json|member_\d{3,}\.(pt|json))$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Training options that do not change the trained weights' identity (as in
#: ``betenet_model.ensemble._same_config``): left out of the config digest.
_VOLATILE_TRAINING = ("checkpoint_every", "device")


class ModelNotFoundError(ValueError):
    """No model document of that id in the store (the message lists the ids there)."""


class CorruptModelError(ValueError):
    """A stored file whose sha256 is not the recorded one (the message names the file)."""


# --------------------------------------------------------------------------- ids
def config_digest(config: Mapping[str, Any]) -> str:
    """First 6 hex digits of the sha256 of an ensemble config (``ensemble.json`` ``config``).

    ``training.checkpoint_every``, ``training.device``, ``keep_checkpoints`` and
    ``members`` are left out: they do not change what a member learns (the member
    count is in the model id on its own).
    """
    c = dict(config)
    c["training"] = {k: v for k, v in dict(c.get("training") or {}).items()
                     if k not in _VOLATILE_TRAINING}
    c.pop("keep_checkpoints", None)
    c.pop("members", None)
    text = json.dumps(c, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def model_id_from_manifest(manifest: Mapping[str, Any]) -> str:
    """``<variant>-<training-set hash[:12]>-m<members>-<config digest>``.

    Two ensembles trained on the same rows with other options or seeds get
    different ids (the seed is part of the config).
    """
    members = len(manifest.get("member_files") or []) or manifest.get("members")
    variant = manifest.get("variant", DEFAULT_VARIANT)
    return (f"{variant}-{manifest['training_set']['hash'][:12]}"
            f"-m{members}-{config_digest(manifest.get('config') or {})}")


def parse_model_ref(value: str | os.PathLike[str] | None) -> str | None:
    """The model id of a ``store:MODEL_ID`` reference, None for anything else (a folder).

    Raises
    ------
    ValueError
        ``store:`` followed by nothing or by an id with characters a model id never has.
    """
    if value is None or not isinstance(value, str) or not value.startswith(STORE_PREFIX):
        return None
    model_id = value[len(STORE_PREFIX):]
    _check_model_id(model_id)
    return model_id


def _check_model_id(model_id: str) -> None:
    if not _MODEL_ID.match(model_id or ""):
        raise ValueError(f"{model_id!r} is not a model id (letters, digits, '.', '_', '-'); "
                         "`bete model list --store STORE` shows the stored ones")


def blob_uuid_for(model_id: str) -> str:
    """Key of a model's blob (derived from the id, so a second put replaces it)."""
    digest = hashlib.sha256(f"model-files|{model_id}".encode()).hexdigest()
    return f"bete-model-{digest[:24]}"


# --------------------------------------------------------------------------- files
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ensemble_files(model_dir: str | os.PathLike[str]) -> list[Path]:
    """The files of a finished ensemble folder: manifest, member weights and records.

    Checkpoints and temporary files are left out.

    Raises
    ------
    FileNotFoundError
        No ``ensemble.json``, or a member file the manifest lists is missing.
    ValueError
        The manifest lists no finished member (training did not finish).
    """
    folder = Path(model_dir)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} holds no ensemble ({MANIFEST} is missing)")
    manifest = json.loads(manifest_path.read_text())
    members = manifest.get("member_files") or []
    if not members:
        raise ValueError(f"{folder} holds no finished member (no member_files in {MANIFEST}); "
                         "finish training first")
    files = [manifest_path]
    for name in members:
        weights = folder / name
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} is listed in {MANIFEST} but missing")
        files.append(weights)
        info = weights.with_suffix(".json")
        if info.is_file():
            files.append(info)
    for f in files:
        if not _FILE_NAME.match(f.name):
            raise ValueError(f"unexpected ensemble file name {f.name!r} in {folder}")
    return files


def _data_store(store: Any) -> Any:
    extra = getattr(store, "additional_stores", None) or {}
    try:
        return extra[BLOB_STORE]
    except KeyError:
        raise ValueError("the store has no `data` additional store for model files; add one "
                         "to the store spec (see docs/cluster.md)") from None


# --------------------------------------------------------------------------- put
def put_ensemble(store: Any, model_dir: str | os.PathLike[str],
                 training_query: Mapping[str, Any] | None = None) -> str:
    """Put a finished ensemble folder into a JobStore; returns its model id.

    Parameters
    ----------
    store
        A connected jobflow ``JobStore`` with a ``data`` additional store.
    model_dir
        The ensemble folder (``bete train --out``).
    training_query
        What the training rows were selected by (stored in the model document);
        default: the data source and split the manifest's metadata records.

    Returns
    -------
    str
        The model id (:func:`model_id_from_manifest`); ``store:<id>`` loads it.
        Putting the same ensemble again replaces the blob and the document.
    """
    files = ensemble_files(model_dir)
    manifest = json.loads(files[0].read_text())
    model_id = model_id_from_manifest(manifest)
    blob_uuid = blob_uuid_for(model_id)
    entries, blob_files = [], []
    for f in files:
        data = f.read_bytes()
        entry = {"name": f.name, "sha256": _sha256(data), "size_bytes": len(data)}
        entries.append(entry)
        blob_files.append({**entry, "data": base64.b64encode(data).decode("ascii")})
    _data_store(store).update({"blob_uuid": blob_uuid, "model_id": model_id,
                               "files": blob_files}, key="blob_uuid")
    if training_query is None:
        meta = manifest.get("metadata") or {}
        training_query = {k: meta[k] for k in ("data_source", "split", "source", "campaign")
                          if k in meta}
    write_model_document(store, model_document(manifest, training_query, blob_uuid=blob_uuid,
                                               files=entries))
    return model_id


def model_document(manifest: Mapping[str, Any], training_query: Mapping[str, Any], *,
                   path: str | None = None, blob_uuid: str | None = None,
                   files: list[dict[str, Any]] | None = None) -> ModelDocument:
    """The model document of an ensemble manifest (the one place one is built).

    Parameters
    ----------
    manifest
        ``ensemble.json`` of the ensemble.
    training_query
        What the training rows were selected by.
    path
        The ensemble folder, for a document of a folder (``bete al run``).
    blob_uuid, files
        Where the files are kept in the store (:func:`put_ensemble`).
    """
    return ModelDocument(
        model_id=model_id_from_manifest(manifest),
        variant=manifest.get("variant", DEFAULT_VARIANT),  # none: structure-only
        hyperparameters=manifest.get("config", {}),
        n_members=len(manifest.get("member_files") or []) or int(manifest["members"]),
        training_query=dict(training_query), training_set_hash=manifest["training_set"]["hash"],
        metrics=manifest.get("metrics", {}), path=path, blob_uuid=blob_uuid,
        files=[ModelFile(**f) for f in files or []], versions=manifest.get("versions", {}),
        format=manifest.get("format"))


# --------------------------------------------------------------------------- read
def list_models(store: Any) -> list[dict[str, Any]]:
    """Every model document of the store (the ``output`` part), sorted by model id."""
    docs = [d["output"] for d in store.query({"output.doc_type": "model"})]
    return sorted(docs, key=lambda d: str(d.get("model_id")))


def find_model(store: Any, model_id: str) -> dict[str, Any] | None:
    """The model document of ``model_id`` (None if the store has none)."""
    doc = store.query_one({"output.doc_type": "model", "output.model_id": model_id})
    return None if doc is None else doc["output"]


def default_cache_dir() -> Path:
    """Where stored ensembles are unpacked: ``<settings scratch_dir>/models``.

    The settings' ``scratch_dir`` (``BETE_SCRATCH_DIR``, default ``~/.bete/scratch``)
    is per machine and may be wiped: a missing cache is fetched again.
    """
    return Path(get_settings().scratch_dir).expanduser() / "models"


def _intact(folder: Path, expected: Mapping[str, str]) -> bool:
    if not expected or not folder.is_dir():
        return False
    present = {p.name for p in folder.iterdir()}
    if present != set(expected):
        return False
    return all(_sha256((folder / name).read_bytes()) == sha for name, sha in expected.items())


def get_ensemble_dir(store: Any, model_id: str,
                     cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A local folder holding the stored ensemble ``model_id`` (``Ensemble.load`` reads it).

    The files go to ``<cache_dir>/<model_id>`` (default :func:`default_cache_dir`),
    written to a temporary folder first and renamed, so a killed process never
    leaves a half-written ensemble there.  An intact cached folder (every sha256
    as recorded) is reused without reading the blob.

    Raises
    ------
    ModelNotFoundError
        (a ``ValueError``) no model ``model_id`` in the store; the message lists
        the ids that are there.
    CorruptModelError
        (a ``ValueError``) a file's sha256 differs from the recorded one; the
        message names the file.
    ValueError
        The document has no stored files (a folder-only record whose folder is gone)
        or its blob is missing.
    """
    _check_model_id(model_id)
    doc = find_model(store, model_id)
    if doc is None:
        ids = [str(d.get("model_id")) for d in list_models(store)]
        listed = ", ".join(ids) if ids else "none"
        raise ModelNotFoundError(f"no model {model_id!r} in the store; stored models: {listed}")
    if not doc.get("blob_uuid"):
        path = doc.get("path")
        if path and (Path(path) / MANIFEST).is_file():
            return Path(path)  # a folder-only record (active learning) on this machine
        raise ValueError(f"model {model_id} has no files in the store (recorded with folder "
                         f"{path}, not here); put it with `bete train --store` or "
                         "stores.models.put_ensemble")
    expected = {f["name"]: f["sha256"] for f in doc.get("files") or []}
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / model_id
    if _intact(target, expected):
        return target
    blob = _data_store(store).query_one({"blob_uuid": doc["blob_uuid"]})
    if blob is None:
        raise ValueError(f"the files of model {model_id} (blob {doc['blob_uuid']}) are missing "
                         "from the store's data store; put the ensemble again")
    stored = {f["name"]: f for f in blob.get("files") or []}
    if not expected:  # a document without per-file hashes: trust the blob's own
        expected = {name: f["sha256"] for name, f in stored.items()}
    missing = sorted(set(expected) - set(stored))
    if missing:
        raise CorruptModelError(f"model {model_id}: the stored blob lacks {', '.join(missing)}")
    contents: dict[str, bytes] = {}
    for name, sha in expected.items():
        if not _FILE_NAME.match(name):
            raise CorruptModelError(f"model {model_id}: unexpected file name {name!r}")
        data = base64.b64decode(stored[name]["data"])
        got = _sha256(data)
        if got != sha:
            raise CorruptModelError(f"model {model_id}: stored file {name} is corrupt (sha256 "
                                    f"{got[:16]}…, recorded {sha[:16]}…); put the ensemble "
                                    "again")
        contents[name] = data
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_id}.", dir=root))
    try:
        for name, data in contents.items():
            (tmp / name).write_bytes(data)
        if target.exists():
            shutil.rmtree(target)  # not intact (checked above)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _intact(target, expected):  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = ["STORE_PREFIX", "CorruptModelError", "ModelNotFoundError", "blob_uuid_for",
           "config_digest", "default_cache_dir", "ensemble_files", "find_model",
           "get_ensemble_dir", "list_models", "model_id_from_manifest", "parse_model_ref",
           "put_ensemble"]

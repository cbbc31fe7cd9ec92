"""Store configuration: one spec selects the embedded or the production store.

A *store spec* is one of

- a directory: the embedded default, maggma ``MontyStore`` collections with
  SQLite storage in that directory (created by writing commands only;
  reading commands open it read-only and fail on a missing one);
- a MongoDB connection string (``mongodb://`` or ``mongodb+srv://``, the
  database in the path): ``MongoStore`` for documents and ``GridFSStore``
  for the ``data`` blobs, both on that server;
- a YAML (or JSON) file, in one of three layouts:

  * a jobflow ``JobStore`` spec (``docs_store`` plus ``additional_stores``,
    each with a maggma ``type``), the layout of ``JobStore.from_file``;
  * a jobflow settings file whose ``JOB_STORE`` key holds such a spec;
  * a bete settings file whose ``store:`` key holds another spec;

- a mapping in the jobflow ``JobStore`` layout.

Documents go into the ``docs`` store; large arrays (α²F, phonon DOS, model
checkpoints) into the additional store named ``data``.

Credentials never have to be written into the spec itself: any string value
may reference the environment as ``${VAR}`` or ``${VAR:-default}``, and a
``credentials_file`` key (top level, or inside one store) names a YAML file
of extra keyword arguments (``username``, ``password``, ``s3_profile`` ...)
merged into every MongoDB/GridFS/S3 store of the spec (or into that one
store).  Whatever this module prints or raises goes through
:func:`mask_secrets`/:func:`mask_text` first.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jobflow import JobStore
from maggma.stores import MontyStore
from montydb import MontyClient
from montydb.storage.sqlite import SQLiteKVEngine, SQLiteStorage

from stores.settings import get_settings

logger = logging.getLogger(__name__)

DOCS_COLLECTION = "outputs"
BLOBS_COLLECTION = "outputs_blobs"
DEFAULT_DATABASE = "bete"
MASK = "****"

#: Keys whose values are secrets wherever they appear in a spec.
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "aws_secret_access_key",
        "aws_session_token",
        "secret_key",
        "api_key",
        "private_key",
        "ssh_password",
        "remote_server_password",
    }
)
#: Store types that talk to a server and accept ``credentials_file`` merges.
REMOTE_STORE_TYPES = frozenset(
    {"MongoStore", "MongoURIStore", "GridFSStore", "GridFSURIStore", "S3Store"}
)
#: File montydb writes into the folder of every store it set up.
MONTY_MARKER = ".monty.storage"
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URI_PASSWORD = re.compile(r"(mongodb(?:\+srv)?://[^:/@\s]*:)([^@\s]*)(@)")


class StoreConfigError(ValueError):
    """A store spec that cannot be read or built; the message is masked."""


class _ReadOnlySQLiteEngine(SQLiteKVEngine):
    """montydb's SQLite engine opening every collection file read-only.

    montydb applies its ``journal_mode=WAL`` pragma on every connection, which
    needs write access.  Here files open with ``mode=ro``; on a read-only
    file system, where SQLite cannot create the WAL index of a WAL database,
    with ``immutable=1`` (nothing can change the file there anyway).
    """

    def _connect(self, db_file: str, wconcern: Any = None) -> contextlib.closing:
        flags = "mode=ro"
        if not os.access(os.path.dirname(db_file) or ".", os.W_OK):
            flags += "&immutable=1"
        conn = sqlite3.connect(f"{Path(db_file).resolve().as_uri()}?{flags}", uri=True)
        conn.text_factory = str
        return contextlib.closing(conn)


CONNECT_LOCK = ".bete-connect.lock"
"""File in an embedded store's folder that serialises connections across processes."""


class LockedMontyStore(MontyStore):
    """A maggma ``MontyStore`` whose connection holds a lock file in the folder.

    ``MontyStore.connect`` rewrites montydb's storage configuration on every connection, and
    ``MontyClient`` then reads it back.  Two processes connecting at once (two campaign
    processes on one store) could read the other's half-written file and fail with montydb's
    "cannot be changed in current session"; under the lock one writes and reads at a time, and
    the collection's SQLite table is created before anyone else can see its file.
    """

    def connect(self, force_reset: bool = False) -> None:
        """Connect under an exclusive lock on the folder's :data:`CONNECT_LOCK`."""
        if self._coll is not None and not force_reset:
            return
        lock_path = Path(self.database_path) / CONNECT_LOCK
        try:
            lock = open(lock_path, "a")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise StoreConfigError(
                f"cannot write into the store {self.database_path} ({exc.strerror}); this "
                "command adds results and needs a writable store: make the folder writable "
                "or copy it somewhere writable (reading commands such as `bete query` work "
                "on a read-only store)") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                super().connect(force_reset=force_reset)
                # montydb creates a collection's file, then its table, on the first write;
                # another process seeing the file in between finds no table: create it here
                collection: Any = self._coll
                database = collection.database
                if self.collection_name not in database.list_collection_names():
                    database.create_collection(self.collection_name)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class ReadOnlyMontyStore(MontyStore):
    """A maggma ``MontyStore`` that never writes: for queries of an existing store.

    ``MontyStore.connect`` rewrites montydb's storage files in the folder on
    every connection; this one reads the existing set-up and opens the SQLite
    files read-only, so it works on a read-only file system.  Updates fail.
    """

    def connect(self, force_reset: bool = False) -> None:
        """Open the collection without writing into the store's folder."""
        if self._coll is not None and not force_reset:
            return
        client = MontyClient(self.database_path, **self.client_kwargs)
        storage = client._storage
        if isinstance(storage, SQLiteStorage):
            storage._conn = _ReadOnlySQLiteEngine(storage._config)
        self._coll = client[self.database_name][self.collection_name]


# --------------------------------------------------------------------------- masking
def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide passwords in MongoDB URIs and any of ``secrets`` found in ``text``.

    Parameters
    ----------
    text
        Any message (an exception text, a store name).
    secrets
        Literal secret values to replace as well (empty strings are ignored).

    Returns
    -------
    str
        ``text`` with every secret replaced by ``****``.

    Examples
    --------
    >>> mask_text("mongodb://ann:hunter2@db.example.org:27017/bete")
    'mongodb://ann:****@db.example.org:27017/bete'
    """
    out = _URI_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), str(text))
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) >= 3:  # masking "a" would mangle the whole text
            out = out.replace(secret, MASK)
    return out


def mask_secrets(value: Any) -> Any:
    """A deep copy of a spec with secret values replaced by ``****``.

    Keys named like passwords, tokens and secret keys are masked; so are
    passwords inside MongoDB connection strings.  Non-container values are
    returned unchanged (strings have URI passwords masked).
    """
    if isinstance(value, Mapping):
        return {
            k: (MASK if _is_secret_key(k) and v not in (None, "") else mask_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def collect_secrets(value: Any) -> set[str]:
    """Every secret string a spec holds (for :func:`mask_text`)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for k, v in value.items():
            if _is_secret_key(k) and isinstance(v, str):
                found.add(v)
            else:
                found |= collect_secrets(v)
    elif isinstance(value, list | tuple):
        for v in value:
            found |= collect_secrets(v)
    elif isinstance(value, str):
        found |= {m.group(2) for m in _URI_PASSWORD.finditer(value)}
    return found


def store_secrets(store: Any) -> set[str]:
    """Secrets held by a built store or JobStore (passwords, S3 keys, URIs)."""
    found: set[str] = set()
    stores: list[Any] = [store]
    if isinstance(store, JobStore):
        extra: dict[str, Any] = getattr(store, "additional_stores", {})
        stores = [store.docs_store, *extra.values()]
    for st in stores:
        password = getattr(st, "password", None)
        if isinstance(password, str) and password:
            found.add(password)
        found |= collect_secrets(getattr(st, "uri", None))
        found |= collect_secrets(getattr(st, "s3_profile", None))
        index = getattr(st, "index", None)
        if index is not None and index is not st:
            found |= store_secrets(index)
    return found


# --------------------------------------------------------------------- env + files
def expand_env(value: Any, *, source: str = "store spec") -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of ``value``.

    Raises
    ------
    StoreConfigError
        When a referenced variable is unset and has no default (the message
        names the variable, never a value).
    """
    if isinstance(value, Mapping):
        return {k: expand_env(v, source=source) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [expand_env(v, source=source) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise StoreConfigError(
            f"{source} refers to ${{{name}}} but the environment variable {name} is not set; "
            "export it (or give a default as ${" + name + ":-value})"
        )

    return _ENV_PATTERN.sub(repl, value)


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise StoreConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise StoreConfigError(f"{what} {path} is not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StoreConfigError(f"{what} {path} must hold a mapping, not {type(data).__name__}")
    return data


def read_credentials_file(path: str | os.PathLike[str], *, relative_to: Path | None = None
                          ) -> dict[str, Any]:
    """Keyword arguments for remote stores from a YAML credentials file.

    The file is expanded for ``${VAR}`` like a spec.  A warning is logged
    when it can be read by other users (``chmod 600`` it).
    """
    cred = Path(os.path.expandvars(str(path))).expanduser()
    if not cred.is_absolute() and relative_to is not None:
        cred = relative_to / cred
    if not cred.is_file():
        raise StoreConfigError(f"credentials file {cred} does not exist")
    mode = cred.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("credentials file %s is readable by other users; run chmod 600 %s",
                       cred, cred)
    return expand_env(_read_mapping(cred, "credentials file"), source=str(cred))


def _merge_credentials(store_spec: dict[str, Any], creds: Mapping[str, Any] | None,
                       base: Path | None) -> dict[str, Any]:
    """Apply per-store and global credentials to a store spec (recursively)."""
    spec = dict(store_spec)
    own = spec.pop("credentials_file", None)
    if own is not None:
        creds = {**(creds or {}), **read_credentials_file(own, relative_to=base)}
    for key, value in list(spec.items()):
        if isinstance(value, dict) and "type" in value:
            spec[key] = _merge_credentials(value, creds, base)
    if creds and spec.get("type") in REMOTE_STORE_TYPES:
        for key, value in creds.items():
            if spec.get("type") == "S3Store" and key in {"username", "password"}:
                continue  # those belong to the S3 index store
            spec.setdefault(key, value)
    return spec


# ----------------------------------------------------------------------- resolving
def default_store_spec() -> str:
    """The store spec from the settings (``BETE_STORE`` or the YAML file)."""
    return get_settings().store


def is_mongo_uri(spec: Any) -> bool:
    """Whether ``spec`` is a MongoDB connection string."""
    return isinstance(spec, str) and spec.startswith(("mongodb://", "mongodb+srv://"))


def mongo_uri_spec(uri: str) -> dict[str, Any]:
    """JobStore spec (MongoStore + GridFSStore) for a MongoDB connection string."""
    database = urlsplit(uri).path.lstrip("/") or DEFAULT_DATABASE
    return {
        "docs_store": {"type": "MongoStore", "uri": uri, "database": database,
                       "collection_name": DOCS_COLLECTION},
        "additional_stores": {
            "data": {"type": "GridFSStore", "uri": uri, "database": database,
                     "collection_name": BLOBS_COLLECTION},
        },
    }


def resolve_store_spec(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                       ) -> dict[str, Any]:
    """Turn any accepted store spec into one normalised mapping.

    Parameters
    ----------
    spec
        A directory, a MongoDB URI, a YAML/JSON file or a mapping (see the
        module docstring); None = the settings' ``store``.

    Returns
    -------
    dict
        Either ``{"type": "embedded", "path": <absolute directory>}`` or a
        jobflow JobStore spec (``docs_store``, ``additional_stores``) with
        environment variables expanded and credentials merged in.  The
        result may hold secrets: print it only through :func:`mask_secrets`.

    Raises
    ------
    StoreConfigError
        For a spec that is none of the accepted forms (message masked).
    """
    return _resolve(spec if spec is not None else default_store_spec(), depth=0, base=None)


def _resolve(spec: Any, depth: int, base: Path | None) -> dict[str, Any]:
    if depth > 4:
        raise StoreConfigError("store spec refers to itself (more than 4 levels of `store:`)")
    if isinstance(spec, Mapping):
        return _resolve_mapping(dict(spec), depth, base, source="store spec")
    if not isinstance(spec, str | os.PathLike):
        raise StoreConfigError(f"store spec must be a path, URI or mapping, not "
                               f"{type(spec).__name__}")
    text = expand_env(os.fspath(spec))
    if is_mongo_uri(text):
        return mongo_uri_spec(text)
    path = Path(text).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        if not path.is_file():
            raise StoreConfigError(
                f"store spec {path} does not exist; give a directory (embedded store), "
                "a mongodb:// URI or an existing YAML spec"
            )
        data = _read_mapping(path, "store spec")
        return _resolve_mapping(data, depth, path.parent.resolve(), source=str(path))
    if path.exists() and not path.is_dir():
        raise StoreConfigError(
            f"store {path} is a file but not a YAML store spec; give a directory "
            "(embedded store), a mongodb:// URI or a .yaml spec"
        )
    return {"type": "embedded", "path": str(path.resolve())}


def _resolve_mapping(data: dict[str, Any], depth: int, base: Path | None,
                     source: str) -> dict[str, Any]:
    if "JOB_STORE" in data:  # a jobflow settings file
        inner = data["JOB_STORE"]
        return _resolve(inner, depth + 1, base)
    if "docs_store" not in data:
        if "store" in data:  # a bete settings file
            return _resolve(data["store"], depth + 1, base)
        if data.get("type") == "embedded" and "path" in data:
            return _resolve(str(data["path"]), depth + 1, base)
        raise StoreConfigError(
            f"{source} has no docs_store (jobflow JobStore layout), JOB_STORE or store key; "
            "see `bete config init` for a template"
        )
    data = expand_env(data, source=source)
    creds = None
    if "credentials_file" in data:
        creds = read_credentials_file(data.pop("credentials_file"), relative_to=base)
    data["docs_store"] = _merge_credentials(_require_store(data["docs_store"], "docs_store",
                                                           source), creds, base)
    extra = data.get("additional_stores") or {}
    if not isinstance(extra, Mapping):
        raise StoreConfigError(f"{source}: additional_stores must map names to store specs")
    data["additional_stores"] = {
        name: _merge_credentials(_require_store(s, f"additional_stores.{name}", source), creds,
                                 base)
        for name, s in extra.items()
    }
    if "data" not in data["additional_stores"]:
        logger.warning("%s has no `data` additional store; α²F arrays and checkpoints will be "
                       "stored inline in the documents", source)
    return data


def _require_store(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or "type" not in value:
        raise StoreConfigError(f"{source}: {where} must be a mapping with a maggma `type`")
    return dict(value)


# ---------------------------------------------------------------------- building
def is_embedded_store_dir(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` already holds an embedded (montydb) store."""
    return (Path(directory).expanduser() / MONTY_MARKER).is_file()


def embedded_store(directory: str | os.PathLike[str], *, create: bool = True,
                   read_only: bool = False) -> JobStore:
    """A JobStore on MontyStore/SQLite in ``directory``.

    Parameters
    ----------
    directory
        The store's folder.
    create
        Create the folder when it is missing (writing commands).  With False a
        folder that is not an embedded store raises :class:`StoreConfigError`
        naming it, and nothing is created.
    read_only
        Open every collection read-only: nothing is written into the folder,
        so a store on a read-only file system (or a snapshot) can be queried.
        Implies ``create=False``.
    """
    path = Path(directory).expanduser().resolve()
    if read_only or not create:
        if not path.is_dir():
            raise StoreConfigError(
                f"store {path} does not exist; check the path (--store or BETE_STORE), or "
                "create it with a writing command such as `bete dfpt run`")
        if not is_embedded_store_dir(path):
            raise StoreConfigError(
                f"{path} is not a bete store (no {MONTY_MARKER} in it); check the path "
                "(--store or BETE_STORE)")
    else:
        if not path.exists():
            logger.info("creating the embedded store %s", path)
        path.mkdir(parents=True, exist_ok=True)
    cls = ReadOnlyMontyStore if read_only else LockedMontyStore
    docs = cls(DOCS_COLLECTION, database_path=str(path), storage="sqlite", key="uuid")
    blobs = cls(BLOBS_COLLECTION, database_path=str(path), storage="sqlite",
                key="blob_uuid")
    return JobStore(docs, additional_stores={"data": blobs})


def with_server_timeout(spec: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
    """A copy of a JobStore spec whose MongoDB clients give up after ``timeout_s``.

    Sets ``serverSelectionTimeoutMS`` and ``connectTimeoutMS`` in the
    ``mongoclient_kwargs`` of every MongoDB/GridFS store (an S3 store's index
    included) unless the spec already sets them.
    """
    ms = int(timeout_s * 1000)

    def patch(store: dict[str, Any]) -> dict[str, Any]:
        store = dict(store)
        if store.get("type") in {"MongoStore", "MongoURIStore", "GridFSStore", "GridFSURIStore"}:
            kwargs = dict(store.get("mongoclient_kwargs") or {})
            kwargs.setdefault("serverSelectionTimeoutMS", ms)
            kwargs.setdefault("connectTimeoutMS", ms)
            store["mongoclient_kwargs"] = kwargs
        for key, value in list(store.items()):
            if isinstance(value, dict) and "type" in value:
                store[key] = patch(value)
        return store

    out = copy.deepcopy(dict(spec))
    if "docs_store" in out:
        out["docs_store"] = patch(out["docs_store"])
        out["additional_stores"] = {k: patch(v)
                                    for k, v in (out.get("additional_stores") or {}).items()}
    return out


def load_job_store(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
                   server_timeout_s: float | None = None, create: bool = True,
                   read_only: bool = False) -> JobStore:
    """Build the JobStore a spec names (None = the settings' default).

    Parameters
    ----------
    spec
        A directory, a MongoDB URI, a YAML/JSON spec file or a mapping (see
        the module docstring).
    server_timeout_s
        If given, MongoDB clients give up selecting a server after this many
        seconds (pymongo's default is 30 s).
    create, read_only
        For an embedded store: see :func:`embedded_store` (reading commands
        pass ``create=False``, queries ``read_only=True``).  A server-backed
        store is opened as configured; reading it writes nothing.

    Returns
    -------
    JobStore
        Not yet connected.

    Raises
    ------
    StoreConfigError
        (a ``ValueError``) when the spec is none of the accepted forms or a
        store cannot be constructed; the message never shows a secret.
    """
    resolved = resolve_store_spec(spec)
    if resolved.get("type") == "embedded":
        return embedded_store(resolved["path"], create=create, read_only=read_only)
    if server_timeout_s is not None:
        resolved = with_server_timeout(resolved, server_timeout_s)
    try:
        return JobStore.from_dict_spec(resolved)
    except KeyError as exc:
        raise StoreConfigError(f"unknown maggma store type {exc.args[0]!r} in the store spec"
                               ) from None
    except (TypeError, ValueError) as exc:
        raise StoreConfigError(
            "cannot build the store: " + mask_text(str(exc), collect_secrets(resolved))
        ) from None


def describe_store_spec(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                        ) -> dict[str, Any]:
    """What a spec configures, safe to print (secrets masked).

    Returns
    -------
    dict
        ``kind`` ("embedded" or "mongodb"), ``address`` (a directory or
        ``host:port/database``) and ``stores`` (name → type and location).
    """
    resolved = resolve_store_spec(spec)
    if resolved.get("type") == "embedded":
        return {
            "kind": "embedded",
            "address": resolved["path"],
            "stores": {
                "docs": {"type": "MontyStore", "location": f"{resolved['path']} "
                         f"(sqlite, collection {DOCS_COLLECTION})"},
                "data": {"type": "MontyStore", "location": f"{resolved['path']} "
                         f"(sqlite, collection {BLOBS_COLLECTION})"},
            },
        }
    stores = {"docs": resolved["docs_store"], **resolved.get("additional_stores", {})}
    described = {name: {"type": s.get("type"), "location": store_location(s)}
                 for name, s in stores.items()}
    docs = resolved["docs_store"]
    kind = "mongodb" if docs.get("type") in REMOTE_STORE_TYPES else str(docs.get("type"))
    return {"kind": kind, "address": store_location(docs, with_collection=False),
            "stores": described}


def store_location(store: Mapping[str, Any], *, with_collection: bool = True) -> str:
    """Where one store spec points (``host:port/db/collection``, bucket, path), masked."""
    kind = store.get("type")
    if kind == "S3Store":
        endpoint = store.get("endpoint_url") or "AWS"
        where = f"s3://{store.get('bucket')}"
        if store.get("sub_dir"):
            where += f"/{store['sub_dir']}"
        index = store.get("index")
        index_loc = store_location(index) if isinstance(index, Mapping) else "?"
        return f"{where} at {endpoint} (index {index_loc})"
    if kind == "MontyStore":
        return f"{store.get('database_path', '.')} ({store.get('storage', 'sqlite')})"
    if kind in {"JSONStore", "FileStore"}:
        return str(store.get("paths") or store.get("path"))
    if kind == "MemoryStore":
        return "memory"
    uri = store.get("uri") or (store.get("host") if is_mongo_uri(store.get("host")) else None)
    if uri:
        parts = urlsplit(uri)
        host = parts.hostname or "?"
        hostport = f"{host}:{parts.port}" if parts.port else host
        database = store.get("database") or parts.path.lstrip("/") or "?"
        scheme = parts.scheme
    else:
        hostport = f"{store.get('host', 'localhost')}:{store.get('port', 27017)}"
        database = store.get("database", "?")
        scheme = "mongodb"
    where = f"{scheme}://{hostport}/{database}"
    if with_collection and store.get("collection_name"):
        where += f"/{store['collection_name']}"
    user = store.get("username")
    if user:
        where += f" (user {user})"
    return mask_text(where)

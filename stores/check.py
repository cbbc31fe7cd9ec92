"""Check the configured store: is it reachable, and what does it hold.

:func:`check_store` builds the JobStore a spec names with a short MongoDB
server-selection timeout, connects, and counts the documents by kind.  A
store that cannot be reached raises :class:`StoreUnreachableError` whose
message is one line naming the address tried (secrets masked).

Documents are grouped by ``doc_type``: jobflow keeps a job's output under
``output``, so ``output.doc_type`` is used first and a top-level ``doc_type``
(documents written directly, e.g. by importers) second.  maggma's
``MontyStore`` has no ``aggregate``, so the counts use ``distinct`` plus
``count``, which every maggma store supports.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from maggma.stores import Store

from stores.config import (
    describe_store_spec,
    load_job_store,
    mask_text,
    resolve_store_spec,
    store_secrets,
)

DEFAULT_TIMEOUT_S = 5.0
NO_DOC_TYPE = "(no doc_type)"
DOC_TYPE_FIELDS = ("output.doc_type", "doc_type")


class StoreUnreachableError(ConnectionError):
    """The configured store could not be reached; the message is one masked line."""


@dataclass
class StoreReport:
    """What :func:`check_store` found.

    Attributes
    ----------
    kind
        ``"embedded"`` (MontyStore/SQLite directory) or ``"mongodb"``.
    address
        Directory or ``mongodb://host:port/database`` (no secrets).
    stores
        Store name (``docs``, ``data``, ...) → ``{"type", "location"}``.
    reachable
        Whether every store connected.
    counts
        ``doc_type`` → number of documents in the docs store.
    total
        Documents in the docs store.
    blobs
        Additional store name → number of objects it holds.
    note
        Anything worth saying (e.g. an embedded store not created yet).
    """

    kind: str
    address: str
    stores: dict[str, dict[str, Any]]
    reachable: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    blobs: dict[str, int] = field(default_factory=dict)
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dictionary."""
        return asdict(self)


def count_by_doc_type(store: Store, fields: tuple[str, ...] = DOC_TYPE_FIELDS) -> dict[str, int]:
    """Number of documents of each ``doc_type`` in a connected maggma store.

    Parameters
    ----------
    store
        A connected store (MontyStore, MongoStore, MemoryStore, ...).
    fields
        Fields tried in order; a document is counted under the first one it
        has.  Documents with none are counted under ``"(no doc_type)"``.

    Returns
    -------
    dict
        ``doc_type`` → count, sorted by name.
    """
    counts: dict[str, int] = {}
    claimed: list[dict[str, Any]] = []  # documents already counted under an earlier field
    for name in fields:
        for value in store.distinct(name):
            if value is None or isinstance(value, dict | list):
                continue
            criteria: dict[str, Any] = {name: value}
            if claimed:
                criteria = {"$and": [criteria, *[{"$nor": [c]} for c in claimed]]}
            n = store.count(criteria)
            if n:
                counts[str(value)] = counts.get(str(value), 0) + n
        claimed.append({name: {"$exists": True}})
    rest = store.count({"$nor": claimed}) if claimed else store.count()
    if rest:
        counts[NO_DOC_TYPE] = rest
    return dict(sorted(counts.items()))


def check_store(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> StoreReport:
    """Describe, connect to and count the store a spec names.

    Parameters
    ----------
    spec
        Store spec (directory, MongoDB URI, YAML file, mapping); None = the
        settings' ``store``.
    timeout_s
        MongoDB server-selection and connect timeout in seconds.

    Returns
    -------
    StoreReport
        With ``reachable=True`` and the counts.

    Raises
    ------
    StoreUnreachableError
        One line: which store, the address tried, why (masked).
    stores.config.StoreConfigError
        When the spec itself is wrong.
    """
    described = describe_store_spec(spec)
    report = StoreReport(kind=described["kind"], address=described["address"],
                         stores=described["stores"])
    if report.kind == "embedded" and not Path(report.address).exists():
        report.reachable = True  # nothing to reach; checking must not create it
        report.note = "the directory does not exist yet; the first job that writes creates it"
        return report
    job_store = load_job_store(resolve_store_spec(spec), server_timeout_s=timeout_s)

    def inspect(name: str, store: Store) -> None:
        if name == "docs":
            report.counts = count_by_doc_type(store)
            report.total = store.count()
        else:
            report.blobs[name] = store.count()

    _visit(job_store, described, timeout_s, inspect)
    report.reachable = True
    return report


def ping_store(spec: str | os.PathLike[str] | Mapping[str, Any] | None = None, *,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Connect to every store of a spec and read one document, nothing more.

    Raises
    ------
    StoreUnreachableError
        As :func:`check_store`.
    """
    described = describe_store_spec(spec)
    job_store = load_job_store(resolve_store_spec(spec), server_timeout_s=timeout_s)
    _visit(job_store, described, timeout_s, lambda name, store: store.query_one())


def _visit(job_store: Any, described: Mapping[str, Any], timeout_s: float,
           action: Any) -> None:
    """Connect each store, run ``action(name, store)``, close; errors → one line."""
    secrets = store_secrets(job_store)
    named = {"docs": job_store.docs_store, **job_store.additional_stores}
    for name, store in named.items():
        try:
            store.connect()
            action(name, store)
        except Exception as exc:
            where = described["stores"].get(name, {}).get("location", described["address"])
            reason = mask_text(_first_line(exc), secrets)
            raise StoreUnreachableError(
                f"cannot reach the {name} store at {where} within {timeout_s:g} s "
                f"({type(exc).__name__}: {reason}); check the host, that the server is up and "
                "reachable from this machine, and the credentials"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                store.close()


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """The useful head of a driver error (pymongo appends its topology dump)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for cut in (" (configured timeouts", ", Timeout:", ", Topology Description"):
        text = text.split(cut)[0]
    return text if len(text) <= limit else text[:limit] + "..."

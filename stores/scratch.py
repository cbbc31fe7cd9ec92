"""A throw-away in-memory JobStore for a local run whose outputs only the caller reads.

maggma's ``MemoryStore`` is mongomock: every write and read deep-copies and walks the whole
document (datetime patching, cloning).  For the MLIP phonon flow that was about a quarter of the
CPU time of a cell (profiled: 2.1 of 13.7 s for an 8-atom cell, displaced 144-atom supercells
in every job output).  :class:`DictStore` keeps the documents jobflow writes as they are
(jobflow has already serialised them) and answers the queries jobflow's local runner makes:
a field's value or ``$in``, a sort, a projection.  Anything else raises ``NotImplementedError``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from jobflow import JobStore
from maggma.core import Sort, Store


class DictStore(Store):
    """Documents in a dict keyed by ``key`` (or the tuple of keys an update names)."""

    def __init__(self, name: str = "scratch", key: str = "uuid", **kwargs: Any) -> None:
        self._name = name
        self._docs: dict[Any, dict[str, Any]] | None = None
        super().__init__(key=key, **kwargs)

    @property
    def name(self) -> str:
        """Store name."""
        return self._name

    @property
    def _collection(self) -> dict[Any, dict[str, Any]]:
        if self._docs is None:
            raise RuntimeError("DictStore is not connected")
        return self._docs

    def connect(self, force_reset: bool = False) -> None:
        """Start empty (or keep the documents unless ``force_reset``)."""
        if self._docs is None or force_reset:
            self._docs = {}

    def close(self) -> None:
        """Nothing to release (the documents stay until the store is dropped)."""

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        """Number of documents matching ``criteria``."""
        return sum(1 for _ in self._matching(criteria))

    def query(self, criteria: dict | None = None, properties: dict | list | None = None,
              sort: dict[str, Sort | int] | None = None, skip: int = 0,
              limit: int = 0) -> Iterator[dict]:
        """Documents matching ``criteria`` (field value or ``$in``), sorted, projected."""
        docs = list(self._matching(criteria))
        for field, direction in reversed(list((sort or {}).items())):
            descending = (direction.value if isinstance(direction, Sort) else direction) < 0
            docs.sort(key=functools.partial(_get, field), reverse=descending)
        docs = docs[skip:skip + limit] if limit else docs[skip:]
        if isinstance(properties, dict):
            properties = [k for k, v in properties.items() if v]
        for doc in docs:
            yield doc if not properties else {k: doc[k] for k in [*properties, "_id"]
                                              if k in doc}

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        """Insert or replace documents by ``key`` (default the store's key)."""
        keys = [key] if isinstance(key, str) else list(key or [self.key])
        for doc in [docs] if isinstance(docs, dict) else docs:
            self._collection[tuple(doc.get(k) for k in keys)] = doc

    def remove_docs(self, criteria: dict) -> None:
        """Remove the documents matching ``criteria``."""
        for k in [k for k, d in self._collection.items() if _matches(d, criteria)]:
            del self._collection[k]

    def ensure_index(self, key: str, unique: bool = False) -> bool:
        """No indexes: every query is a scan of a handful of documents."""
        return True

    def groupby(self, keys: list[str] | str, criteria: dict | None = None,
                properties: dict | list | None = None, sort: dict | None = None,
                skip: int = 0, limit: int = 0) -> Iterator[tuple[dict, list[dict]]]:
        """Not used by jobflow's local runner."""
        raise NotImplementedError("DictStore has no groupby")

    def __eq__(self, other: object) -> bool:
        """Same object only (a scratch store is never shared)."""
        return self is other

    def __hash__(self) -> int:
        """Identity hash (see ``__eq__``)."""
        return id(self)

    def _matching(self, criteria: dict | None) -> Iterator[dict[str, Any]]:
        return (d for d in self._collection.values() if _matches(d, criteria or {}))


def _get(field: str, doc: dict[str, Any]) -> Any:
    return doc.get(field)


def _matches(doc: dict[str, Any], criteria: dict[str, Any]) -> bool:
    for field, value in criteria.items():
        if field.startswith("$") or "." in field or (isinstance(value, dict)
                                                     and set(value) != {"$in"}):
            raise NotImplementedError(f"DictStore matches a field's value or $in, not "
                                      f"{field!r}: {value!r}")
        if doc.get(field) not in (value["$in"] if isinstance(value, dict) else [value]):
            return False
    return True


def scratch_job_store() -> JobStore:
    """A connected JobStore on :class:`DictStore` (with the ``data`` store jobflow expects)."""
    store = JobStore(DictStore(), additional_stores={"data": DictStore("data", "blob_uuid")})
    store.connect()
    return store

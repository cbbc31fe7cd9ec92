"""MLIP phonon (and atom-feature) documents in the JobStore: find by key, write once, list.

Kept the way jobflow keeps a job output (``{"uuid", "index", "output": <document>, ...}``),
with the uuid derived from the document's key, so writing a document again replaces it. The
per-atom feature documents of :mod:`workflows.mlip.features` live beside the phonon ones and
use the same functions with their ``doc_type``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from stores.schemas import (
    MLIP_FEATURES_DOC_TYPE,
    MLIP_PHONON_DOC_TYPE,
    MLIPFeatureDocument,
    MLIPPhononDocument,
)

_UUID_PREFIX = {MLIP_PHONON_DOC_TYPE: "mlph", MLIP_FEATURES_DOC_TYPE: "mlft"}


def _uuid(key: str, doc_type: str = MLIP_PHONON_DOC_TYPE) -> str:
    return (f"{_UUID_PREFIX[doc_type]}-{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-"
            f"{key[20:32]}")


def find_mlip_phonon(store: Any, key: str, doc_type: str = MLIP_PHONON_DOC_TYPE,
                     ) -> dict[str, Any] | None:
    """The stored MLIP phonon (or ``doc_type``) document with this key, or None."""
    doc = store.query_one({"output.doc_type": doc_type, "output.key": key})
    return doc["output"] if doc else None


def find_mlip_phonons(store: Any, keys: set[str], doc_type: str = MLIP_PHONON_DOC_TYPE,
                      ) -> dict[str, dict[str, Any]]:
    """The stored MLIP phonon (or ``doc_type``) documents with these keys (one query), by key."""
    if not keys:
        return {}
    query = {"output.doc_type": doc_type, "output.key": {"$in": sorted(keys)}}
    return {d["output"]["key"]: d["output"] for d in store.query(query)}


def write_mlip_phonon(store: Any, doc: MLIPPhononDocument | MLIPFeatureDocument) -> str:
    """Insert (or replace) one document (phonons or atom features); returns its uuid."""
    uid = _uuid(doc.key, doc.doc_type)
    store.update({"uuid": uid, "index": 1, "output": doc.model_dump(mode="json"),
                  "completed_at": datetime.now(timezone.utc).isoformat(),
                  "name": doc.doc_type, "metadata": {"bete_kind": doc.doc_type}},
                 key=["uuid", "index"])
    return uid


def iter_mlip_phonons(store: Any, criteria: dict[str, Any] | None = None,
                      ) -> Iterator[dict[str, Any]]:
    """MLIP phonon documents (newest first) matching ``criteria`` on their fields."""
    query: dict[str, Any] = {"output.doc_type": MLIP_PHONON_DOC_TYPE}
    for k, v in (criteria or {}).items():
        query[f"output.{k}"] = v
    for doc in store.query(query, sort={"completed_at": -1}):
        yield doc["output"]

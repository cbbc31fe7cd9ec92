"""Queries on the JobStore that the command line and the training code share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jobflow import JobStore

from stores.schemas import ELPH_DOC_TYPE, PHDOS_DOC_TYPE

FINAL_ELPH_STATUSES = ("completed", "unstable", "insulator")
"""Statuses of an electron-phonon document that make a rerun unnecessary."""


ELPH_INDEXED_FIELDS = ("output.input_hash", "output.protocol_fingerprint", "output.doc_type")
"""Task-document fields the docs store indexes (reuse by input hash, training by protocol)."""


def ensure_elph_indexes(store: JobStore) -> bool:
    """Index the fields of :data:`ELPH_INDEXED_FIELDS` (no-op where they exist).

    Returns False for a store without indexes (the embedded MontyDB store scans,
    which is fast at its size).
    """
    try:
        for key in ELPH_INDEXED_FIELDS:
            store.docs_store.ensure_index(key)
    except NotImplementedError:
        return False
    return True


def find_elph_by_hash(store: JobStore, input_hash: str) -> dict[str, Any] | None:
    """The stored final task document with this input hash (without blobs), or None."""
    doc = store.query_one(
        {
            "output.doc_type": ELPH_DOC_TYPE,
            "output.input_hash": input_hash,
            "output.status": {"$in": list(FINAL_ELPH_STATUSES)},
        },
        load=False,
    )
    return doc["output"] if doc else None


def iter_elph_documents(store: JobStore, criteria: dict[str, Any] | None = None,
                        load: bool = False) -> Iterator[dict[str, Any]]:
    """Task documents (the job outputs) matching ``criteria`` on output fields.

    ``criteria`` keys are output field names (``formula``, ``protocol``,
    ``lambda_`` ...); ``load=True`` also fetches the blob arrays.
    """
    query: dict[str, Any] = {"output.doc_type": ELPH_DOC_TYPE}
    for key, value in (criteria or {}).items():
        query[f"output.{key}"] = value
    seen: set[str] = set()
    for doc in store.query(query, load=load, sort={"completed_at": -1}):
        out = doc["output"]
        key = out.get("input_hash", doc.get("uuid"))
        if key in seen:  # one row per calculation, newest first
            continue
        seen.add(key)
        out["_job_uuid"] = doc.get("uuid")
        yield out


def find_phonon_dos(store: JobStore, input_hash: str, load: bool = True,
                    ) -> dict[str, Any] | None:
    """The stored ``coarse_phdos`` document with this input hash, or None."""
    doc = store.query_one({"output.doc_type": PHDOS_DOC_TYPE, "output.input_hash": input_hash},
                          load=load)
    return doc["output"] if doc else None


def iter_phonon_dos_documents(store: JobStore, load: bool = True) -> Iterator[dict[str, Any]]:
    """Every stored ``coarse_phdos`` document (the job outputs), blobs loaded by default."""
    for doc in store.query({"output.doc_type": PHDOS_DOC_TYPE}, load=load):
        yield doc["output"]

"""Queries on the JobStore that the command line and the training code share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jobflow import JobStore

from stores.protocol import LEGACY_PRESET_FIELD, with_preset_field
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


def preset_condition(preset: str, prefix: str = "output.") -> dict[str, Any]:
    """Query condition for documents of ``preset`` of any schema version.

    Matches the ``preset`` field, or the field documents of schema 1.0 held it in
    (:data:`stores.protocol.LEGACY_PRESET_FIELD`).
    """
    return {"$or": [{f"{prefix}preset": preset}, {f"{prefix}{LEGACY_PRESET_FIELD}": preset}]}


def output_query(doc_type: str, criteria: dict[str, Any] | None) -> dict[str, Any]:
    """Query on job outputs of ``doc_type``.

    ``criteria`` keys are output field names; ``preset`` also matches schema-1.0 documents
    (:func:`preset_condition`).
    """
    query: dict[str, Any] = {"output.doc_type": doc_type}
    for key, value in (criteria or {}).items():
        if key == "preset":
            query.update(preset_condition(value))
        else:
            query[f"output.{key}"] = value
    return query


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
    return with_preset_field(doc["output"]) if doc else None


def iter_elph_documents(store: JobStore, criteria: dict[str, Any] | None = None,
                        load: bool = False) -> Iterator[dict[str, Any]]:
    """Task documents (the job outputs) matching ``criteria`` on output fields.

    ``criteria`` keys are output field names (``formula``, ``preset``,
    ``lambda_`` ...); ``load=True`` also fetches the blob arrays.  Documents of every
    schema version come out with the preset under ``preset``.
    """
    seen: set[str] = set()
    for doc in store.query(output_query(ELPH_DOC_TYPE, criteria), load=load,
                           sort={"completed_at": -1}):
        out = with_preset_field(doc["output"])
        key = str(out.get("input_hash", doc.get("uuid")))
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
    return with_preset_field(doc["output"]) if doc else None


def iter_phonon_dos_documents(store: JobStore, load: bool = True) -> Iterator[dict[str, Any]]:
    """Every stored ``coarse_phdos`` document (the job outputs), blobs loaded by default."""
    for doc in store.query({"output.doc_type": PHDOS_DOC_TYPE}, load=load):
        yield with_preset_field(doc["output"])

"""Screening, model and active-learning documents in the JobStore.

Each document is kept the way jobflow keeps a job output — ``{"uuid", "index",
"output": <document>, "completed_at", "metadata"}`` — so the queries that read task
documents (``output.doc_type`` ...) read these too.  The ``uuid`` is derived from what
identifies the document (campaign, round, candidate, model), so writing it again
replaces it: nothing is written twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from stores.protocol import with_preset_field
from stores.queries import FINAL_ELPH_STATUSES, output_query
from stores.schemas import ELPH_DOC_TYPE


def _uuid(*parts: Any) -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return f"bete-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _plain(doc: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return doc.model_dump(mode="json") if isinstance(doc, BaseModel) else dict(doc)


def write_document(store: Any, key: tuple[Any, ...], doc: BaseModel | dict[str, Any],
                   kind: str) -> str:
    """Insert or replace one document; returns its uuid."""
    uid = _uuid(kind, *key)
    store.update({"uuid": uid, "index": 1, "output": _plain(doc), "completed_at": _now(),
                  "name": kind, "metadata": {"bete_kind": kind}}, key=["uuid", "index"])
    return uid


def screening_key(doc: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a screening document."""
    return (doc.get("campaign"), doc.get("round"), doc["model_id"], doc["acquisition"],
            doc["candidate_id"])


def write_screening_documents(store: Any, docs: Sequence[BaseModel | dict[str, Any]],
                              ) -> int:
    """Write ranked screening documents (one store document each)."""
    rows = []
    for d in docs:
        plain = _plain(d)
        rows.append({"uuid": _uuid("screening", *screening_key(plain)), "index": 1,
                     "output": plain, "completed_at": _now(), "name": "screening",
                     "metadata": {"bete_kind": "screening"}})
    if rows:
        store.update(rows, key=["uuid", "index"])
    return len(rows)


def iter_screening_documents(store: Any, criteria: dict[str, Any] | None = None,
                             ) -> Iterator[dict[str, Any]]:
    """Screening documents (newest first) matching ``criteria`` on their fields."""
    for doc in store.query(output_query("screening", criteria), sort={"completed_at": -1}):
        yield doc["output"]


def update_screening_verification(store: Any, doc: dict[str, Any],
                                  verification: dict[str, Any]) -> None:
    """Attach a DFPT result to a stored screening document."""
    new = {**doc, "verification": verification, "selected": True}
    write_screening_documents(store, [new])


def update_screening_prescreen(store: Any, criteria: dict[str, Any],
                               prescreen: dict[str, Any]) -> None:
    """Record the MLIP pre-screen verdict on the newest screening document matching."""
    update_screening_fields(store, criteria, {"prescreen": prescreen,
                                              "selected": bool(prescreen.get("passed"))})


def update_screening_fields(store: Any, criteria: dict[str, Any],
                            fields: dict[str, Any]) -> None:
    """Set ``fields`` on the newest screening document matching ``criteria``."""
    for doc in iter_screening_documents(store, criteria):
        write_screening_documents(store, [{**doc, **fields}])
        break


def round_key(campaign: str, number: int) -> tuple[Any, ...]:
    """What identifies an active-learning round document."""
    return (campaign, int(number))


def write_round(store: Any, doc: BaseModel | dict[str, Any]) -> str:
    """Insert or replace an active-learning round document."""
    plain = _plain(doc)
    plain["updated_at"] = _now()
    return write_document(store, round_key(plain["campaign"], plain["round"]), plain,
                          "al_round")


def load_rounds(store: Any, campaign: str | None = "default") -> list[dict[str, Any]]:
    """Active-learning round documents of a campaign (all campaigns: None), by round."""
    query: dict[str, Any] = {"output.doc_type": "al_round"}
    if campaign is not None:
        query["output.campaign"] = campaign
    docs = [with_preset_field(d["output"]) for d in store.query(query)]
    return sorted(docs, key=lambda d: (str(d.get("campaign")), int(d["round"])))


#: Fields of a model document that say where its files are kept in the store.
STORED_FILE_FIELDS = ("blob_uuid", "files", "format")


def write_model_document(store: Any, doc: BaseModel | dict[str, Any]) -> str:
    """Insert or replace a model document (keyed by ``model_id``).

    A document that does not say where the files are in the store keeps what an earlier
    document of the same model said (``bete al run`` on an ensemble already put with
    ``bete train --store`` must not orphan its blob).
    """
    plain = _plain(doc)
    if not plain.get("blob_uuid"):
        old = store.query_one({"uuid": _uuid("model", plain["model_id"])})
        kept = ((old or {}).get("output") or {})
        if kept.get("blob_uuid"):
            plain.update({k: kept[k] for k in STORED_FILE_FIELDS if k in kept})
    return write_document(store, (plain["model_id"],), plain, "model")


def best_verified_tc(store: Any, preset: str | None = None) -> float | None:
    """Highest Allen–Dynes Tc (K) of a completed, dynamically stable task document.

    Of ``preset`` (None: of any).
    """
    criteria: dict[str, Any] = {"status": "completed", "dynamically_stable": True}
    if preset is not None:
        criteria["preset"] = preset
    query = output_query(ELPH_DOC_TYPE, criteria)
    best = None
    for doc in store.query(query, properties=["output.tc_allen_dynes_K"]):
        tc = (doc.get("output") or {}).get("tc_allen_dynes_K")
        if isinstance(tc, int | float) and (best is None or tc > best):
            best = float(tc)
    return best


__all__ = ["FINAL_ELPH_STATUSES", "best_verified_tc", "iter_screening_documents", "load_rounds",
           "update_screening_verification", "write_document", "write_model_document",
           "write_round", "write_screening_documents"]

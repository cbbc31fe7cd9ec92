"""Stored el-ph results as flat rows (what ``bete query`` prints), Tc recomputable at any μ*."""

from __future__ import annotations

from typing import Any

import numpy as np

from stores.protocol import derive_identity
from stores.queries import iter_elph_documents
from workflows.common.physics import allen_dynes_tc, mcmillan_allen_dynes_tc

COLUMNS = [
    "formula", "source_id", "preset", "pseudo_family", "status", "lambda", "omega_log_K",
    "omega_2_K",
    "tc_allen_dynes_K", "tc_mcmillan_K", "dynamically_stable", "min_frequency_meV",
    "pressure_kbar", "protocol_fingerprint", "input_hash",
]
"""The columns of the table ``bete query`` prints."""


def elph_row(doc: dict[str, Any], mu_star: float | None = None) -> dict[str, Any]:
    """A flat result row of a task document (both Tc recomputed when ``mu_star`` is given)."""
    scf = doc.get("scf") or {}
    out = {c: doc.get(c) for c in COLUMNS}
    out["mu_star"] = doc.get("mu_star")
    lam, wlog, w2 = doc.get("lambda_"), doc.get("omega_log_K"), doc.get("omega_2_K")
    if mu_star is not None and lam is not None and wlog is not None and w2 is not None:
        out["mu_star"] = mu_star
        out["tc_allen_dynes_K"] = allen_dynes_tc(lam, wlog, w2, mu_star)
        out["tc_mcmillan_K"] = mcmillan_allen_dynes_tc(lam, wlog, mu_star)
    identity, why_not = derive_identity(doc)
    out["protocol_fingerprint"] = (doc.get("protocol_fingerprint")
                                   or (identity.fingerprint() if identity else None))
    out["protocol_label"] = identity.label() if identity else None
    out["pseudo_family"] = (identity.pseudo_family if identity else
                            ((doc.get("parameters") or {}).get("family") or {}).get("name"))
    if identity is None:
        out["protocol_fingerprint_missing"] = why_not
    out["lambda"] = doc.get("lambda_")
    out["pressure_kbar"] = scf.get("pressure_kbar")
    out["reference_sigma_Ry"] = doc.get("reference_sigma_Ry")
    out["lambda_q_sum"] = doc.get("lambda_q_sum")
    out["warnings"] = doc.get("warnings", [])
    return out


def elph_rows(store: Any, criteria: dict[str, Any], *, mu_star: float | None = None,
              fingerprint: str | None = None, tc_min: float | None = None,
              tc_max: float | None = None) -> list[dict[str, Any]]:
    """Rows of the stored el-ph documents: what ``bete query`` prints.

    ``criteria`` maps output fields to conditions; ``fingerprint`` keeps the protocols whose
    fingerprint starts with it.

    With ``mu_star`` both Tc are recomputed and ``tc_min`` / ``tc_max`` apply to the
    recomputed Allen–Dynes Tc (without it they belong in ``criteria``).
    """
    rows = [elph_row(d, mu_star) for d in iter_elph_documents(store, criteria)]
    if fingerprint:
        rows = [r for r in rows if str(r["protocol_fingerprint"]).startswith(fingerprint)]
    if mu_star is not None and (tc_min is not None or tc_max is not None):
        lo = -np.inf if tc_min is None else tc_min
        hi = np.inf if tc_max is None else tc_max
        rows = [r for r in rows if r["tc_allen_dynes_K"] is not None
                and lo <= r["tc_allen_dynes_K"] <= hi]
    return rows

"""Export electron-phonon task documents as a versioned dataset (the ``fast-v1`` layout).

One JSON record per calculation, ``<id>.json``, in the layout of
``shared/PROTOCOL-fast-v1.md`` (what :func:`stores.datasets.load_fast_v1` reads),
plus what makes a record reproducible and its protocol exact:
``protocol_identity`` / ``protocol_fingerprint`` / ``protocol_label``
(:mod:`stores.protocol`), ``parameters`` (every QE input), ``input_hash`` and
``computed_by`` (the code and flow that computed it).  A dataset holds one
protocol: the export selects one fingerprint, never a mix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from stores.constants import DEFAULT_REFERENCE_SIGMA_RY
from stores.datasets import RESERVED_BETE_NET_IDS
from stores.protocol import derive_identity, record_fingerprint

EXPORT_FORMATS = ("fast-v1",)
EXPORTED_STATUSES = ("completed", "unstable", "insulator")
COMPUTED_BY_FLOW = ("workflows.qe.flows.ElphFlowMaker (QE DFPT el-ph: pw.x → ph.x → q2r.x → "
                    "matdyn.x)")


@dataclass
class ExportSummary:
    """What an export wrote and left out."""

    protocol_fingerprint: str | None = None
    label: str = ""
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _code_version() -> str:
    try:
        return metadata.version("bete")
    except metadata.PackageNotFoundError:  # running from a checkout without install
        return "unknown"


def _record_id(doc: Mapping[str, Any]) -> str:
    return str(doc.get("source_id") or str(doc["input_hash"])[:12])


def fast_v1_record(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One task document (loaded with its blobs) as a fast-v1-layout record.

    Raises
    ------
    ValueError
        When the document's identity cannot be derived, or its spectra do not share
        one frequency grid.
    """
    identity, why_not = derive_identity(doc)
    if identity is None:
        raise ValueError(f"document {doc.get('input_hash', '?')[:12]} has no protocol "
                         f"identity: {why_not}")
    scf = doc.get("scf") or {}
    walls = doc.get("wall_times_s") or {}
    record: dict[str, Any] = {
        "id": _record_id(doc), "source": doc.get("source_id"), "formula": doc["formula"],
        "nsites": doc["nsites"], "structure": doc["structure"],
        # the fast-v1 layout names its preset/family block "protocol"
        "protocol": {"name": identity.preset, "pseudo_family": identity.pseudo_family,
                     "fingerprint": identity.fingerprint()},
        "ecutwfc": doc.get("ecutwfc_Ry"), "ecutrho": doc.get("ecutrho_Ry"),
        "k_grid": doc.get("k_grid"), "k_grid_dense": doc.get("k_grid_dense"),
        "q_grid": doc.get("q_grid"),
        "pseudopotentials": {el: p["filename"] for el, p in
                             (doc.get("pseudopotentials") or {}).items()},
        "qe_version": doc.get("qe_version"), "pressure_kbar": scf.get("pressure_kbar"),
        "fermi_energy_eV": scf.get("fermi_energy_eV"),
        "wall_s": round(float(sum(walls.values())), 1),
        "protocol_fingerprint": identity.fingerprint(),
        "protocol_label": identity.label(),
        "protocol_identity": identity.model_dump(mode="json"),
        "input_hash": doc["input_hash"], "parameters": doc.get("parameters"),
        "computed_by": {"code": "bete", "version": _code_version(), "flow": COMPUTED_BY_FLOW,
                        "job_uuids": doc.get("job_uuids") or {},
                        "created_at": str(doc.get("created_at"))},
        "warnings": list(doc.get("warnings") or []),
    }
    if doc["status"] == "insulator":
        record.update(status="insulator", error=doc.get("status_reason"))
        return record
    spectra = doc.get("a2f_spectra") or []
    if not spectra:
        raise ValueError(f"document {record['id']} has no α²F spectra (load it with blobs)")
    grid = spectra[0]["frequencies_meV"]
    if any(s["frequencies_meV"] != grid for s in spectra):
        raise ValueError(f"document {record['id']}: the α²F spectra have different grids")
    moments = {round(float(b["sigma_Ry"]), 6): b for b in doc.get("broadenings") or []}
    a2f = []
    for spec in spectra:
        sigma = round(float(spec["sigma_Ry"]), 6)
        b = moments.get(sigma, {})
        a2f.append({"sigma_Ry": sigma, "a2F": spec["a2f"],
                    **{k: b.get(k) for k in ("lambda_", "omega_log_K", "omega_2_K",
                                              "tc_allen_dynes_K")}})
    reference = round(float(doc.get("reference_sigma_Ry") or DEFAULT_REFERENCE_SIGMA_RY), 6)
    phdos = doc.get("phdos") or {}
    record.update(
        a2F_frequency_meV=grid, a2F=a2f,
        reference_sigma_index=min(range(len(a2f)),
                                  key=lambda i: abs(a2f[i]["sigma_Ry"] - reference)),
        qe_lambda_file=[{"sigma_Ry": round(float(b["sigma_Ry"]), 6), "lambda_": b.get("qe_lambda"),
                         "dos_ef": b.get("dos_ef")} for b in doc.get("broadenings") or []],
        phdos_frequency_meV=phdos.get("frequencies_meV"), phdos_total=phdos.get("total"),
        phdos_site=phdos.get("site_dos"), min_frequency_meV=doc.get("min_frequency_meV"),
        dynamically_stable=doc.get("dynamically_stable"), matdyn_asr=doc.get("matdyn_asr"),
        status="ok")
    return record


def _write_atomically(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


def export_records(docs: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike[str],
                   protocol_fingerprint: str | None = None) -> ExportSummary:
    """Write the documents of one protocol as fast-v1 records into ``out_dir``.

    Parameters
    ----------
    docs
        Task documents with their blobs (``iter_elph_documents(..., load=True)``).
    out_dir
        Dataset folder (created); records already there of another protocol stop
        the export (a dataset holds one protocol).
    protocol_fingerprint
        Protocol fingerprint (or prefix) to export; None = the only one there is.

    Raises
    ------
    ValueError
        Several fingerprints and none named (the message lists them), none matching,
        or an ``out_dir`` holding records of another protocol.
    """
    summary = ExportSummary()
    groups: dict[str, list[Mapping[str, Any]]] = {}
    labels: dict[str, str] = {}
    for doc in docs:
        identity, why_not = derive_identity(doc)
        if identity is None:
            summary.skipped[_record_id(doc)] = f"no protocol identity: {why_not}"
            continue
        fp = identity.fingerprint()
        groups.setdefault(fp, []).append(doc)
        labels[fp] = identity.label()
    listing = "; ".join(f"{fp} ({len(d)} documents: {labels[fp]})" for fp, d in groups.items())
    wanted = protocol_fingerprint
    chosen = [fp for fp in groups if wanted is None or fp.startswith(wanted)]
    if not chosen:
        raise ValueError(f"no document of protocol {wanted!r} to export; the store "
                         f"holds: {listing or 'none with a protocol identity'}")
    if len(chosen) > 1:
        raise ValueError(f"the documents belong to {len(chosen)} protocols, and a dataset "
                         f"holds one: {listing}; choose one with --protocol-fingerprint")
    summary.protocol_fingerprint, summary.label = chosen[0], labels[chosen[0]]
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for existing in sorted(folder.glob("*.json")):
        data = json.loads(existing.read_text())
        other = record_fingerprint(data) if isinstance(data, dict) else None
        if other is not None and other != summary.protocol_fingerprint:
            raise ValueError(f"{existing} is a record of protocol {other}, not "
                             f"{summary.protocol_fingerprint}: a dataset holds one "
                             "protocol; export into another folder")
    used: dict[str, str] = {}
    for doc in sorted(groups[summary.protocol_fingerprint], key=lambda d: str(d["input_hash"])):
        record = fast_v1_record(doc)
        rid = record["id"]
        if rid.isdigit() and int(rid) in RESERVED_BETE_NET_IDS:
            summary.skipped[rid] = "reserved for evaluation (never in a training set)"
            continue
        if rid in used and used[rid] != doc["input_hash"]:
            rid = record["id"] = f"{rid}-{str(doc['input_hash'])[:8]}"
        used[rid] = str(doc["input_hash"])
        path = folder / f"{rid}.json"
        if path.is_file():
            old = json.loads(path.read_text())
            if old.get("input_hash") not in (None, doc["input_hash"]) or (
                    old.get("input_hash") is None and old.get("status") == "ok"):
                summary.skipped[rid] = f"{path.name} holds another calculation; kept"
                continue
            if old == json.loads(json.dumps(record, default=str)):
                summary.unchanged.append(rid)
                continue
        _write_atomically(path, record)
        summary.written.append(rid)
    return summary

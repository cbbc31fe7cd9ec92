"""Protocol identity of an electron-phonon calculation and its short fingerprint.

A *preset* (``fast``, ``standard``, ``accurate``) is only one part of what fixes a
document's numbers.  The *protocol identity* is all of it: the preset name and the
resolved preset (preset + overrides; stored as ``parameters["recipe"]``), the
pseudopotential family (name and a digest of its UPF files) with each file the
calculation used (name, md5), the QE version, the reference broadening σ and μ*.  The
fingerprint is a 12-hex-digit hash of the parts that are the same for every structure of
one protocol (the per-structure file list is checked against the family digest instead),
so rows of one fingerprint may be trained on together and rows of two fingerprints never
are.

Pure functions over documents and files: no QE, no flows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

FINGERPRINT_LENGTH = 12
RECIPE_KEYS_IGNORED = ("name", "description")
"""Resolved-preset keys that do not change a number (left out of ``recipe_sha256``)."""
FINGERPRINT_FIELDS = ("preset", "recipe_sha256", "pseudo_family", "pseudo_family_sha256",
                      "qe_version", "reference_sigma_Ry", "mu_star")
"""The identity fields the fingerprint hashes."""


class ProtocolIdentity(BaseModel):
    """Everything that determines the numbers of an electron-phonon document."""

    preset: str = Field(description="Preset name (fast, standard, accurate, or a YAML stem).")
    recipe_sha256: str = Field(
        description="sha256 of the resolved preset (preset with the overrides applied; "
        "its name and description left out).")
    overrides: dict[str, Any] | None = Field(
        None, description="Overrides given on top of the preset (None: not recorded, "
        "documents older than the identity; the recipe hash covers them).")
    pseudo_family: str = Field(description="Pseudopotential family name.")
    pseudo_family_sha256: str = Field(
        description="sha256 over (file name, md5) of every UPF file of the family directory.")
    pseudopotentials: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Element → {filename, md5} of the files used.")
    qe_version: str | None = Field(None, description="QE version pw.x reported (e.g. 6.7MaX).")
    reference_sigma_Ry: float = Field(
        description="Broadening of the headline values (Ry).")
    mu_star: float = Field(description="Coulomb pseudopotential μ* of the Tc values.")

    def fingerprint(self) -> str:
        """Short hash of :data:`FINGERPRINT_FIELDS` (same for every structure of a protocol)."""
        payload = {key: getattr(self, key) for key in FINGERPRINT_FIELDS}
        payload["reference_sigma_Ry"] = round(float(payload["reference_sigma_Ry"]), 6)
        payload["mu_star"] = round(float(payload["mu_star"]), 6)
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_LENGTH]

    def label(self) -> str:
        """One line for people: preset, family, QE, σ, μ*."""
        return (f"{self.preset} + {self.pseudo_family}, QE {self.qe_version or '?'}, "
                f"σ {self.reference_sigma_Ry:g} Ry, μ* {self.mu_star:g}")


def recipe_sha256(recipe: Mapping[str, Any]) -> str:
    """sha256 of a resolved preset (``parameters["recipe"]``), its name and description left out."""
    kept = {k: v for k, v in recipe.items() if k not in RECIPE_KEYS_IGNORED}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def file_md5(path: str | Path) -> str:
    """MD5 of a file's bytes (the checksum pseudopotential tables publish)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def family_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """Digest of a family from its (file name, md5) pairs, order-independent."""
    lines = sorted(f"{name} {md5}" for name, md5 in entries)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def directory_family_sha256(directory: str | Path) -> str:
    """Digest over every ``*.upf`` file (any case) of a family directory.

    Adding, removing or changing a file gives the family a new digest (and its
    documents a new fingerprint).

    Raises
    ------
    ValueError
        When the directory does not exist or holds no UPF file.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"pseudopotential directory {folder} does not exist here")
    files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".upf" and p.is_file()]
    if not files:
        raise ValueError(f"{folder} holds no UPF file")
    stats = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return _cached_family_sha256(str(folder.resolve()), stats)


@lru_cache(maxsize=32)
def _cached_family_sha256(folder: str, stats: tuple[tuple[str, int, int], ...]) -> str:
    return family_sha256((name, file_md5(Path(folder) / name)) for name, _, _ in stats)


LEGACY_PRESET_FIELD = "protocol"
"""Where task, phonon-DOS and round documents of schema 1.0 held the preset name (renamed
``preset`` in 2.0; :func:`with_preset_field` reads either)."""


def with_preset_field(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its preset name under ``preset`` (a schema-1.0 field renamed in place).

    Only a string is a preset name: the fast-v1 record layout's ``protocol`` mapping is
    another thing and stays.
    """
    if "preset" not in doc and isinstance(doc.get(LEGACY_PRESET_FIELD), str):
        doc["preset"] = doc.pop(LEGACY_PRESET_FIELD)
    return doc


def preset_of(doc: Mapping[str, Any]) -> str | None:
    """The preset name of a task, phonon-DOS or round document of any schema version."""
    value = with_preset_field(dict(doc)).get("preset")
    return str(value) if value is not None else None


def identity_of(doc: Mapping[str, Any]) -> ProtocolIdentity | None:
    """The identity a document stores (None for documents older than the field)."""
    data = doc.get("protocol_identity")
    return ProtocolIdentity.model_validate(data) if data else None


def derive_identity(doc: Mapping[str, Any]) -> tuple[ProtocolIdentity | None, str | None]:
    """Identity of a task document: stored, or rebuilt from the inputs an older one stores.

    An older document (no ``protocol_identity``) is rebuilt from its ``parameters``
    (resolved preset, family directory), ``pseudopotentials`` (md5),
    ``qe_version``, ``reference_sigma_Ry`` and ``mu_star``, when the family
    directory still exists here and still holds the files with those md5s.

    Returns
    -------
    identity, reason
        The identity and None, or None and why it cannot be derived.
    """
    stored = identity_of(doc)
    if stored is not None:
        return stored, None
    params = doc.get("parameters") or {}
    recipe = params.get("recipe")
    family = params.get("family") or {}
    if not recipe or not family.get("directory"):
        return None, "the document stores no resolved preset or pseudopotential directory"
    if doc.get("reference_sigma_Ry") is None:
        return None, (f"the {doc.get('status', '?')} document records no reference σ "
                      "(older insulator/failed documents)")
    directory = Path(family["directory"])
    used = doc.get("pseudopotentials") or {}
    try:
        digest = directory_family_sha256(directory)
        for element, entry in used.items():
            path = directory / entry["filename"]
            if not path.is_file() or file_md5(path) != entry["md5"]:
                return None, (f"{path} is missing or differs from the file the document "
                              f"used for {element} (md5 {entry['md5']})")
    except (OSError, ValueError) as exc:
        return None, str(exc)
    identity = ProtocolIdentity(
        preset=str(preset_of(doc) or recipe.get("name")),
        recipe_sha256=recipe_sha256(recipe),
        overrides=None, pseudo_family=str(family.get("name") or directory.name),
        pseudo_family_sha256=digest,
        pseudopotentials={el: {"filename": e["filename"], "md5": e["md5"]}
                          for el, e in used.items()},
        qe_version=doc.get("qe_version"), reference_sigma_Ry=float(doc["reference_sigma_Ry"]),
        mu_star=float(doc.get("mu_star", 0.10)))  # pinned: μ* before documents recorded it
    return identity, None


def protocol_fingerprint_of(doc: Mapping[str, Any]) -> str | None:
    """The document's protocol fingerprint: stored, else derived (None when not derivable)."""
    if doc.get("protocol_fingerprint"):
        return str(doc["protocol_fingerprint"])
    identity, _ = derive_identity(doc)
    return identity.fingerprint() if identity else None


# ------------------------------------------------------------------------- fast-v1
FAST_V1_PSLIBRARY_FAMILY = "pslibrary-1.0.0-pbe-us"
FAST_V1_IDENTITY = ProtocolIdentity(
    preset="fast",
    recipe_sha256="b45d261046acb3835e423e671a03477f3239999bddd60c1ca9f4af5dbfcaf0bc",
    overrides={},
    pseudo_family=FAST_V1_PSLIBRARY_FAMILY,
    pseudo_family_sha256="46c7ade94c5b507696491eab81316a4644a4ad37fc4f796ccf1e95e0c0984d5d",
    qe_version="6.7MaX",
    reference_sigma_Ry=0.02,
    mu_star=0.10,
)
"""Identity of the fast-v1 records (``shared/PROTOCOL-fast-v1.md``): the ``fast`` preset with
pslibrary 1.0.0 PBE (ultrasoft), QE 6.7, σ 0.02 Ry, μ* 0.10.  The two hashes are pinned from
the preset and ``shared/pseudo/pslibrary-1.0.0-pbe-us`` (tests/stores/test_protocol.py
recomputes them), so records carry this identity on machines without that directory."""
FAST_V1_FINGERPRINT = FAST_V1_IDENTITY.fingerprint()


def record_fingerprint(record: Mapping[str, Any]) -> str | None:
    """Fingerprint of a fast-v1-layout JSON record.

    Exported records carry ``protocol_fingerprint``; the original fast-v1 records
    (``protocol.name == "fast-v1"``) map to :data:`FAST_V1_FINGERPRINT`.
    """
    if record.get("protocol_fingerprint"):
        return str(record["protocol_fingerprint"])
    protocol = record.get("protocol")
    if isinstance(protocol, Mapping) and protocol.get("name") == "fast-v1":
        return FAST_V1_FINGERPRINT
    return None

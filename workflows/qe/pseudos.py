"""Pseudopotential families: which UPF file each element uses, and its cutoffs.

A family is a directory of UPF files plus the rule that picks one file per element:

* a directory with a naming rule (pslibrary layout, ``<El>.<functional>-*.UPF``, one per
  element): :meth:`PseudoFamily.from_directory`; cutoffs from the UPF header's
  "Suggested minimum cutoff for wavefunctions/charge density";
* an SSSP-style JSON (element → ``filename``, ``cutoff_wfc``, ``cutoff_rho``, ``md5``; files
  next to the JSON): :meth:`PseudoFamily.from_json`;
* Debian's ``/usr/share/espresso/pseudo`` restricted to its LDA (Perdew–Zunger) files, one
  fixed file per element (:data:`DEBIAN_LDA_FILES`): :meth:`PseudoFamily.debian`, the
  default when the ``pseudo_family`` setting is unset.

Every file's header is parsed (UPF v1 and v2) for element, functional, ``z_valence`` and
suggested cutoffs, and its md5 is computed.  Missing elements raise
:class:`~workflows.qe.errors.MissingPseudopotentialError` and species with different
functionals a :class:`~workflows.qe.errors.BeteInputError`, both at input generation.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from monty.json import MSONable

from workflows.qe.errors import BeteInputError, MissingPseudopotentialError

__all__ = [
    "DEBIAN_PSEUDO_DIR", "DEBIAN_LDA_FILES", "DEBIAN_DEFAULT_CUTOFFS_RY", "DEBIAN_NAMES",
    "PseudoInfo",
    "PseudoFamily", "UpfHeader", "read_upf_header", "canonical_functional", "default_family",
    "known_families", "family_covering",
]

DEBIAN_PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
"""Where Debian's ``quantum-espresso-data`` package installs its pseudopotentials."""

DEBIAN_LDA_FILES: Mapping[str, str] = {
    "Al": "Al.pz-vbc.UPF",
    "As": "As.pz-bhs.UPF",
    "Au": "Au.pz-rrkjus_aewfc.UPF",
    "B": "B.pz-vbc.UPF",
    "C": "C.pz-rrkjus.UPF",
    "Cu": "Cu.pz-d-rrkjus.UPF",
    "Fe": "Fe.pz-nd-rrkjus.UPF",
    "H": "H.pz-vbc.UPF",
    "Mg": "Mg.pz-n-vbc.UPF",
    "Ni": "Ni.pz-nd-rrkjus.UPF",
    "O": "O.pz-rrkjus.UPF",
    "Pb": "Pb.pz-d-van.UPF",
    "Pt": "Pt.rel-pz-n-rrkjus.UPF",
    "Si": "Si.pz-vbc.UPF",
    "Ti": "Ti.pz-sp-van_ak.UPF",
}
"""The one LDA file per element used from Debian's directory (fixed, documented choice)."""

DEBIAN_NAMES = ("debian", "debian-lda")
"""Names of the Debian LDA family for :meth:`PseudoFamily.from_path` (``--pseudos debian``)."""

DEBIAN_DEFAULT_CUTOFFS_RY = (40.0, 320.0)
"""(ecutwfc, ecutrho) in Ry for Debian files whose header suggests no cutoff (most do not)."""

_FUNCTIONAL_ALIASES = {
    "LDA": "LDA", "PZ": "LDA", "SLA PZ NOGX NOGC": "LDA",
    "PBE": "PBE", "SLA PW PBX PBC": "PBE", "SLA PW PBE PBE": "PBE",
    "PBESOL": "PBESOL", "SLA PW PSX PSC": "PBESOL",
    "BLYP": "BLYP", "SLA B88 LYP BLYP": "BLYP", "SLA LYP B88 BLYP": "BLYP",
    "PW91": "PW91", "SLA PW GGX GGC": "PW91",
    "TPSS": "TPSS", "SLA PW TPSS TPSS": "TPSS",
}


def canonical_functional(text: str) -> str:
    """Map a UPF functional string to one name (``'SLA PZ NOGX NOGC'`` → ``'LDA'``).

    Parameters
    ----------
    text
        The functional as written in a UPF header (v1 line or v2 attribute).

    Returns
    -------
    str
        ``LDA``, ``PBE``, ``PBESOL``, ``BLYP``, ``PW91``, ``TPSS``, or the upper-cased,
        whitespace-normalised input when unknown.
    """
    tokens = text.upper().replace("-", "").split()
    for n in (len(tokens), 4, 1):
        key = " ".join(tokens[:n])
        if key in _FUNCTIONAL_ALIASES:
            return _FUNCTIONAL_ALIASES[key]
    return " ".join(tokens)


@dataclass(frozen=True)
class UpfHeader:
    """What the project needs from a UPF file's header."""

    element: str
    functional: str
    z_valence: float
    pseudo_type: str
    upf_version: int
    ecutwfc_Ry: float | None
    ecutrho_Ry: float | None
    md5: str


def _attr(header: str, name: str) -> str | None:
    match = re.search(rf"\b{name}\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", header, re.IGNORECASE)
    if match is None:
        return None
    return (match[1] if match[1] is not None else match[2]).strip()


def _suggested(text: str) -> tuple[float | None, float | None]:
    """Cutoffs from PP_INFO's 'Suggested minimum cutoff for ...' lines (pslibrary)."""
    wfc = re.search(r"Suggested minimum cutoff for wavefunctions:\s*([\d.]+)", text)
    rho = re.search(r"Suggested minimum cutoff for charge density:\s*([\d.]+)", text)
    return (float(wfc[1]) if wfc else None, float(rho[1]) if rho else None)


def _positive(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value > 0 else None


@lru_cache(maxsize=512)
def _read_upf_cached(path: str, mtime_ns: int, size: int) -> UpfHeader:
    data = Path(path).read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    text = data[:400_000].decode("latin-1")
    wfc, rho = _suggested(text)
    v2 = re.search(r"<PP_HEADER\b(.*?)/?>", text, re.DOTALL)
    if v2 is not None and "=" in v2[1]:
        header = v2[1]
        element = _attr(header, "element")
        functional = _attr(header, "functional")
        zval = _attr(header, "z_valence")
        ptype = _attr(header, "pseudo_type") or "?"
        if wfc is None:
            wfc = float((_attr(header, "wfc_cutoff") or "0").lower().replace("d", "e"))
        if rho is None:
            rho = float((_attr(header, "rho_cutoff") or "0").lower().replace("d", "e"))
        version = 2
    else:
        block = re.search(r"<PP_HEADER>(.*?)</PP_HEADER>", text, re.DOTALL)
        if block is None:
            raise BeteInputError(f"{path} is not a UPF file (no <PP_HEADER>); remove it or "
                                 "point the family at a directory of UPF files")
        lines = block[1].strip().splitlines()

        def line_with(tag: str) -> list[str]:
            for line in lines:
                if tag.lower() in line.lower():
                    return line.split()
            raise BeteInputError(f"{path}: UPF v1 header has no '{tag}' line")

        element = line_with("Element")[0]
        functional = " ".join(line_with("Exchange-Correlation")[:4])
        zval = line_with("Z valence")[0]
        ptype = line_with("pseudopotential")[0] if any(
            "pseudopotential" in x.lower() for x in lines) else "?"
        if wfc is None or rho is None:
            cut = line_with("Suggested cutoff")
            wfc, rho = float(cut[0]), float(cut[1])
        version = 1
    if not element or not functional or zval is None:
        raise BeteInputError(f"{path}: UPF header lacks element, functional or z_valence; "
                             "use a complete UPF file")
    return UpfHeader(
        element=element.strip(),
        functional=canonical_functional(functional),
        z_valence=float(zval.lower().replace("d", "e")),
        pseudo_type={"USPP": "US"}.get(ptype.upper(), ptype.upper()),
        upf_version=version,
        ecutwfc_Ry=_positive(wfc),
        ecutrho_Ry=_positive(rho),
        md5=md5,
    )


def read_upf_header(path: str | Path) -> UpfHeader:
    """Parse a UPF (v1 or v2) header and compute the file's md5 (cached per file version).

    Raises
    ------
    BeteInputError
        When the file cannot be read or is not a UPF file.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise BeteInputError(f"cannot read pseudopotential {path}: {exc}") from exc
    return _read_upf_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class PseudoInfo:
    """One element's pseudopotential in a family.

    Cutoffs are what the family recommends (JSON, header, or the family default; see
    ``cutoff_source``), in Ry.
    """

    element: str
    filename: str
    path: str
    md5: str
    functional: str
    z_valence: float
    ecutwfc_Ry: float
    ecutrho_Ry: float
    pseudo_type: str = "?"
    cutoff_source: str = "header"


@dataclass(frozen=True)
class PseudoFamily(MSONable):
    """A directory of UPF files and the rule that picks one per element.

    Parameters
    ----------
    name
        Short name used in messages and documents.
    directory
        Absolute directory of the UPF files (becomes pw.x ``pseudo_dir``).
    files
        Element → file name (JSON and Debian families); ``None`` = use the naming rule.
    functional_tag
        For the naming rule: only files ``<El>.<tag>...`` (e.g. ``"pbe"``); None = any.
    cutoffs
        Element → (ecutwfc, ecutrho) Ry overriding the headers (JSON families).
    md5
        Element → expected md5 (JSON families); a mismatch is an error.
    default_cutoffs_Ry
        (ecutwfc, ecutrho) used when neither ``cutoffs`` nor the header gives one.
    """

    name: str
    directory: Path
    files: Mapping[str, str] | None = None
    functional_tag: str | None = None
    cutoffs: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    md5: Mapping[str, str] = field(default_factory=dict)
    default_cutoffs_Ry: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        # normalise types so that a JSON round trip (as_dict/from_dict) compares equal
        object.__setattr__(self, "directory", Path(self.directory))
        if self.files is not None:
            object.__setattr__(self, "files", dict(self.files))
        object.__setattr__(self, "cutoffs",
                           {el: (float(w), float(r)) for el, (w, r) in self.cutoffs.items()})
        object.__setattr__(self, "md5", dict(self.md5))
        if self.default_cutoffs_Ry is not None:
            wfc, rho = self.default_cutoffs_Ry
            object.__setattr__(self, "default_cutoffs_Ry", (float(wfc), float(rho)))

    @property
    def label(self) -> str:
        """Name and directory, as used in error messages."""
        return f"'{self.name}' ({self.directory})"

    # --- constructors ---------------------------------------------------------------------
    @classmethod
    def from_directory(cls, path: str | Path, functional: str | None = None,
                       name: str | None = None,
                       default_cutoffs_Ry: tuple[float, float] | None = None) -> PseudoFamily:
        """Family from a directory using the pslibrary naming rule ``<El>.<functional>-*.UPF``.

        Raises
        ------
        BeteInputError
            When ``path`` is not a directory.
        """
        directory = Path(path).expanduser().resolve()
        if not directory.is_dir():
            raise BeteInputError(f"pseudopotential directory {directory} does not exist; "
                                 "set BETE_PSEUDO_FAMILY to a directory of UPF files or a JSON")
        return cls(name=name or directory.name, directory=directory,
                   functional_tag=functional.lower() if functional else None,
                   default_cutoffs_Ry=default_cutoffs_Ry)

    @classmethod
    def from_json(cls, path: str | Path, name: str | None = None) -> PseudoFamily:
        """Family from an SSSP-style JSON; the UPF files lie in the JSON's directory.

        Each entry: ``{"filename": ..., "cutoff_wfc": Ry, "cutoff_rho": Ry, "md5": ...}``
        (``cutoff``/``dual`` as in older SSSP files are accepted too).
        """
        path = Path(path).expanduser().resolve()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BeteInputError(f"cannot read pseudopotential family JSON {path}: {exc}; "
                                 "give an SSSP-style JSON file") from exc
        if not isinstance(data, dict):
            raise BeteInputError(f"{path} must map element symbols to entries")
        files, cutoffs, md5 = {}, {}, {}
        for element, entry in data.items():
            if not isinstance(entry, dict) or "filename" not in entry:
                raise BeteInputError(f"{path}: entry {element!r} needs a 'filename'")
            files[element] = entry["filename"]
            wfc = entry.get("cutoff_wfc", entry.get("cutoff"))
            rho = entry.get("cutoff_rho")
            if rho is None and wfc is not None and "dual" in entry:
                rho = float(wfc) * float(entry["dual"])
            if wfc is not None and rho is not None:
                cutoffs[element] = (float(wfc), float(rho))
            if entry.get("md5"):
                md5[element] = str(entry["md5"]).lower()
        return cls(name=name or path.stem, directory=path.parent, files=files,
                   cutoffs=cutoffs, md5=md5)

    @classmethod
    def debian(cls, functional: str = "lda", directory: str | Path | None = None
               ) -> PseudoFamily:
        """Debian's ``/usr/share/espresso/pseudo`` restricted to its LDA files.

        Only ``functional="lda"`` is defined (:data:`DEBIAN_LDA_FILES`): the directory holds
        too few files of any other functional to be useful.
        """
        if functional.lower() not in ("lda", "pz"):
            raise BeteInputError(
                f"the Debian family is defined for LDA only, not {functional!r}; point "
                "BETE_PSEUDO_FAMILY at a pslibrary or SSSP family for other functionals")
        return cls(name="debian-lda", directory=Path(directory or DEBIAN_PSEUDO_DIR),
                   files=dict(DEBIAN_LDA_FILES), default_cutoffs_Ry=DEBIAN_DEFAULT_CUTOFFS_RY)

    @classmethod
    def from_path(cls, path: str | Path) -> PseudoFamily:
        """Family from a JSON file, a directory, or the names ``debian``/``debian-lda``."""
        if str(path).lower() in DEBIAN_NAMES:
            return cls.debian()
        resolved = Path(path).expanduser()
        if resolved.suffix.lower() == ".json":
            return cls.from_json(resolved)
        if resolved.is_dir() and resolved.resolve() == DEBIAN_PSEUDO_DIR.resolve():
            return cls.debian()
        return cls.from_directory(resolved)

    # --- lookup ---------------------------------------------------------------------------
    def _candidates(self, element: str) -> list[str]:
        if not self.directory.is_dir():
            return []
        names = []
        for entry in sorted(self.directory.iterdir()):
            if entry.suffix.lower() != ".upf" or not entry.is_file():
                continue
            stem = entry.name
            if len(stem) <= len(element) or stem[len(element)] not in "._-":
                continue
            if stem[: len(element)].lower() != element.lower():
                continue
            rest = stem[len(element) + 1:].lower()
            if self.functional_tag and not re.match(
                rf"{re.escape(self.functional_tag)}([-_.]|$)", rest
            ):
                continue
            names.append(entry.name)
        return names

    def filename(self, element: str) -> str:
        """The file the family uses for ``element``.

        Raises
        ------
        MissingPseudopotentialError
            When the family has no file for ``element``.
        BeteInputError
            When the naming rule matches several files.
        """
        if self.files is not None:
            if element not in self.files or not (self.directory / self.files[element]).is_file():
                raise MissingPseudopotentialError(element, self.label)
            return self.files[element]
        names = [n for n in self._candidates(element)
                 if read_upf_header(self.directory / n).element.lower() == element.lower()]
        if not names:
            raise MissingPseudopotentialError(element, self.label)
        if len(names) > 1:
            raise BeteInputError(
                f"family {self.label} has several files for {element}: {', '.join(names)}; "
                "keep one per element or pin the choice with an SSSP-style JSON")
        return names[0]

    def get(self, element: str) -> PseudoInfo:
        """Pseudopotential of ``element`` with md5, functional, valence and cutoffs."""
        filename = self.filename(element)
        path = self.directory / filename
        header = read_upf_header(path)
        if header.element.lower() != element.lower():
            raise BeteInputError(f"{path} is for {header.element}, not {element}; fix family "
                                 f"{self.label}")
        expected = self.md5.get(element)
        if expected and expected != header.md5:
            raise BeteInputError(f"md5 of {path} is {header.md5}, the family JSON says "
                                 f"{expected}; restore the original file or fix the JSON")
        if element in self.cutoffs:
            (wfc, rho), source = self.cutoffs[element], "family json"
        elif header.ecutwfc_Ry is not None and header.ecutrho_Ry is not None:
            wfc, rho, source = header.ecutwfc_Ry, header.ecutrho_Ry, "header"
        elif self.default_cutoffs_Ry is not None:
            (wfc, rho), source = self.default_cutoffs_Ry, "family default"
        else:
            raise BeteInputError(
                f"{path} suggests no cutoffs and family {self.label} has no default; "
                "set 'ecutwfc' and 'ecutrho' in the overrides")
        return PseudoInfo(
            element=element, filename=filename, path=str(path.resolve()), md5=header.md5,
            functional=header.functional, z_valence=header.z_valence, ecutwfc_Ry=float(wfc),
            ecutrho_Ry=float(rho), pseudo_type=header.pseudo_type, cutoff_source=source,
        )

    def check(self, elements: Iterable[str]) -> dict[str, PseudoInfo]:
        """Look up every element and require one functional for all of them.

        Returns
        -------
        dict
            Element → :class:`PseudoInfo`, in the order given (duplicates dropped).

        Raises
        ------
        MissingPseudopotentialError
            For the first element without a file.
        BeteInputError
            When the files use different functionals.
        """
        infos = {el: self.get(el) for el in dict.fromkeys(str(e) for e in elements)}
        functionals = {info.functional for info in infos.values()}
        if len(functionals) > 1:
            listing = ", ".join(f"{el}: {i.functional} ({i.filename})" for el, i in infos.items())
            raise BeteInputError(
                f"pseudopotentials of family {self.label} mix functionals ({listing}); "
                "use one functional for all species (choose a family that covers all "
                "elements with the same functional)")
        return infos

    def available_elements(self) -> list[str]:
        """Elements the family can provide (reads headers for rule-based families)."""
        if self.files is not None:
            return sorted(e for e, f in self.files.items() if (self.directory / f).is_file())
        found = set()
        if self.directory.is_dir():
            for entry in self.directory.iterdir():
                if entry.suffix.lower() == ".upf":
                    try:
                        found.add(read_upf_header(entry).element)
                    except BeteInputError:
                        continue
        return sorted(found)


def default_family() -> PseudoFamily:
    """The family named by the ``pseudo_family`` setting (read now), else Debian LDA."""
    from stores.settings import get_settings

    spec = get_settings().pseudo_family
    return PseudoFamily.from_path(spec) if spec else PseudoFamily.debian()


def known_families() -> list[PseudoFamily]:
    """The families this machine has without being told.

    The ``pseudo_family`` setting's, and Debian's LDA files when ``quantum-espresso-data``
    is installed.
    """
    from stores.settings import get_settings

    found = []
    spec = get_settings().pseudo_family
    for make in ((lambda: PseudoFamily.from_path(spec)) if spec else None,
                 PseudoFamily.debian):
        if make is None:
            continue
        try:
            family = make()
        except (BeteInputError, OSError):
            continue
        if family.directory.is_dir():
            found.append(family)
    return found


def family_covering(elements: Iterable[str], exclude: PseudoFamily | None = None,
                    families: Iterable[PseudoFamily] | None = None) -> PseudoFamily | None:
    """The first family with a file for every one of ``elements``, or None.

    ``families`` defaults to :func:`known_families`; ``exclude`` (the family that lacks
    them) is skipped.
    """
    needed = set(elements)
    for family in known_families() if families is None else families:
        if exclude is not None and family.directory.resolve() == exclude.directory.resolve() \
                and family.name == exclude.name:
            continue
        if needed <= set(family.available_elements()):
            return family
    return None

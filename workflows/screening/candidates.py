"""Candidate structures for screening: reading, checking and de-duplication.

Sources (:func:`read_candidates`):

- a directory of structure files (CIF, POSCAR/CONTCAR, ``*.vasp``, pymatgen JSON);
- a BETE-NET-style folder (``structures/bete-net``: ``<index>.cif``); ids ``bete-net:<index>``;
- a JSON file (one pymatgen Structure, a list of them, a list of ``{"id", "structure"}``
  objects or a mapping id → structure) or a JSONL file (one of those per line);
- the store itself (``"store"``): structures of screening documents that have no
  electron-phonon task document yet.

:func:`screen_candidates` then rejects what cannot be screened and verified, keeping
the reason of every rejection: unreadable, one of the shared structure checks
(:func:`workflows.qe.structures.check_structure`: disordered, unsupported element, magnetic,
overlapping atoms), too many atoms, an element the
pseudopotential family lacks (the DFPT step would fail), duplicate of another candidate
or of a structure the store already holds (pymatgen ``StructureMatcher``, comparisons only
within one reduced formula).
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from stores.datasets import RESERVED_BETE_NET_IDS

logger = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".json", ".poscar", ".mcif")
STORE_SOURCE = "store"
"""``read_candidates`` source name for the store's own screening documents."""

REASONS = ("unreadable", "invalid", "disordered", "unsupported_element", "magnetic",
           "overlapping_atoms", "too_many_atoms", "missing_pseudopotential", "duplicate",
           "already_computed", "needs_phonon_dos", "no_mlip_phonons", "no_mlip_inputs",
           "reserved")
"""Rejection reasons (the ``reason`` of a :class:`Rejection`)."""
REASON_FIXES = {
    "unreadable": "fix those files or leave them out",
    "too_many_atoms": "raise --max-atoms (DFPT cost grows steeply with cell size)",
    "missing_pseudopotential": "point --pseudos at a family that covers them (an SSSP or "
                               "pslibrary directory)",
    "duplicate": "the same structure as another candidate (StructureMatcher)",
    "already_computed": "the store already holds their DFPT result of the same protocol "
                        "(see `bete query`)",
    "reserved": "bete-net structures held out to evaluate the model: never screened, verified "
                "by DFPT nor trained on",
}
"""What to do about each rejection reason (others quote the check's own message)."""


@dataclass
class Candidate:
    """One structure to screen.

    Attributes
    ----------
    id : str
        Identifier (file stem, ``bete-net:<index>``, JSON id ...); unique within a set.
    structure : Structure
    source : str
        File or source it came from.
    """

    id: str
    structure: Structure = field(repr=False)
    source: str = ""

    @property
    def formula(self) -> str:
        """Reduced formula."""
        return self.structure.composition.reduced_formula

    @property
    def chemsys(self) -> str:
        """Chemical system, e.g. ``"Mg-Tl"``."""
        return self.structure.composition.chemical_system

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what screening jobs receive)."""
        return {"id": self.id, "source": self.source, "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        """Inverse of :meth:`as_dict`."""
        structure = data["structure"]
        if isinstance(structure, dict):
            structure = Structure.from_dict(structure)
        return cls(str(data["id"]), structure, str(data.get("source", "")))


@dataclass
class Rejection:
    """A candidate left out, and why.

    Attributes
    ----------
    id : str
    source : str
    reason : str
        One of :data:`REASONS`.
    detail : str
        A sentence for the user.
    formula : str, optional
    """

    id: str
    source: str
    reason: str
    detail: str
    formula: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary (for tables and JSON)."""
        return {"id": self.id, "formula": self.formula, "source": self.source,
                "reason": self.reason, "detail": self.detail}


@dataclass
class CandidateSet:
    """Accepted candidates and rejections."""

    accepted: list[Candidate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.accepted)

    def reasons(self) -> dict[str, int]:
        """Rejection count per reason."""
        out: dict[str, int] = defaultdict(int)
        for r in self.rejected:
            out[r.reason] += 1
        return dict(out)

    def report(self, shown: int = 5) -> list[str]:
        """The rejections grouped by cause, one line per cause with its fix.

        Each line: ``reason (count): ids...; fix``; for ``missing_pseudopotential`` the
        missing elements are named; for per-structure checks the first detail is quoted.
        """
        groups: dict[str, list[Rejection]] = defaultdict(list)
        for r in self.rejected:
            groups[r.reason].append(r)
        lines = []
        for reason in sorted(groups, key=lambda k: (-len(groups[k]), k)):
            items = groups[reason]
            ids = ", ".join(r.id for r in items[:shown]) + (", ..." if len(items) > shown else "")
            fix = REASON_FIXES.get(reason) or items[0].detail
            if reason == "missing_pseudopotential":
                elements = sorted({m for r in items
                                   for m in re.findall(r"pseudopotential for (\w+)", r.detail)})
                fix = f"no pseudopotential for {', '.join(elements)}; {fix}"
            lines.append(f"{reason} ({len(items)}): {ids} -- {fix}")
        return lines


# --------------------------------------------------------------------------- reading
def _read_file(path: Path) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_file(str(path))


def _is_structure_file(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() in STRUCTURE_SUFFIXES
                               or path.name.upper().startswith(("POSCAR", "CONTCAR")))


def is_betenet_folder(path: Path) -> bool:
    """True for a BETE-NET-style folder: only ``<integer>.cif`` structure files."""
    cifs = [p for p in path.iterdir() if p.suffix.lower() == ".cif"]
    return bool(cifs) and all(p.stem.isdigit() for p in cifs)


def _json_entries(data: Any, origin: str) -> list[tuple[str, Any]]:
    """(id, structure dict) pairs of a parsed JSON value."""
    if isinstance(data, dict) and data.get("@class") == "Structure" or (
            isinstance(data, dict) and "lattice" in data and "sites" in data):
        return [(origin, data)]
    if isinstance(data, dict) and "structure" in data:
        return [(str(data.get("id") or data.get("candidate_id") or origin), data["structure"])]
    if isinstance(data, dict):
        return [(str(k), v.get("structure", v) if isinstance(v, dict) else v)
                for k, v in data.items()]
    if isinstance(data, list):
        out = []
        for i, item in enumerate(data):
            for ident, value in _json_entries(item, f"{origin}:{i}"):
                out.append((ident, value))
        return out
    return [(origin, data)]


def _from_entries(entries: Iterable[tuple[str, Any]], source: str,
                  result: CandidateSet) -> None:
    for ident, value in entries:
        try:
            structure = value if isinstance(value, Structure) else Structure.from_dict(value)
        except Exception as exc:
            result.rejected.append(Rejection(ident, source, "unreadable",
                                             f"not a pymatgen Structure ({exc})"))
            continue
        result.accepted.append(Candidate(ident, structure, source))


def _read_json_file(path: Path, result: CandidateSet) -> None:
    text = path.read_text()
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                result.rejected.append(Rejection(f"{path.stem}:{n}", str(path), "unreadable",
                                                 f"line {n} is not JSON ({exc})"))
                continue
            _from_entries(_json_entries(data, f"{path.stem}:{n}"), str(path), result)
        return
    data = json.loads(text)
    _from_entries(_json_entries(data, path.stem), str(path), result)


def read_candidates(sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                    store: Any = None) -> CandidateSet:
    """Read candidate structures from files, folders, JSON/JSONL or the store.

    Parameters
    ----------
    sources : path or sequence of paths
        Structure files, folders of them (BETE-NET ``<index>.cif`` folders included),
        JSON/JSONL files, or ``"store"``.
    store : jobflow.JobStore, optional
        Connected store, needed for the ``"store"`` source.

    Returns
    -------
    CandidateSet
        Unreadable entries are rejected (reason ``unreadable``), not raised.  Ids are
        made unique by appending ``#2``, ``#3`` ...

    Raises
    ------
    ValueError
        A source that does not exist, or ``"store"`` without a store.
    """
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    result = CandidateSet()
    for item in items:
        if str(item) == STORE_SOURCE:
            if store is None:
                raise ValueError("the 'store' candidate source needs --store")
            result.accepted += store_candidates(store)
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            betenet = is_betenet_folder(path)
            files = sorted((p for p in path.iterdir() if _is_structure_file(p)
                            or p.suffix.lower() == ".jsonl"),
                           key=lambda p: (int(p.stem) if betenet and p.stem.isdigit() else 0,
                                          p.name))
            if not files:
                raise ValueError(f"{path} holds no structure files (.cif, POSCAR, .json ...)")
            for f in files:
                if betenet and f.stem.isdigit() and int(f.stem) in RESERVED_BETE_NET_IDS:
                    result.rejected.append(Rejection(
                        f"bete-net:{f.stem}", str(f), "reserved",
                        f"bete-net {f.stem} is reserved for evaluation"))
                    continue
                _read_one(f, result, f"bete-net:{f.stem}" if betenet else None)
        elif path.is_file():
            _read_one(path, result, None)
        else:
            raise ValueError(f"candidate source {path} does not exist; give structure files, "
                             "a folder of them, a JSON/JSONL file or 'store'")
    _unique_ids(result.accepted)
    return result


def _read_one(path: Path, result: CandidateSet, ident: str | None) -> None:
    if path.suffix.lower() in (".json", ".jsonl"):
        try:
            _read_json_file(path, result)
            return
        except ValueError:
            pass  # maybe a pymatgen JSON Structure.from_file understands; fall through
    try:
        structure = _read_file(path)
    except Exception as exc:
        result.rejected.append(Rejection(ident or path.stem, str(path), "unreadable",
                                         f"cannot read a structure ({type(exc).__name__}: "
                                         f"{exc})"))
        return
    result.accepted.append(Candidate(ident or path.stem, structure, str(path)))


def _unique_ids(candidates: list[Candidate]) -> None:
    seen: dict[str, int] = defaultdict(int)
    for c in candidates:
        seen[c.id] += 1
        if seen[c.id] > 1:
            c.id = f"{c.id}#{seen[c.id]}"


def store_candidates(store: Any) -> list[Candidate]:
    """Structures of the store's screening documents that no el-ph task document matches.

    One candidate per ``candidate_id`` (newest document); those already computed are
    removed later by :func:`screen_candidates` (``already_computed``).
    """
    from stores.records import iter_screening_documents

    out: dict[str, Candidate] = {}
    for doc in iter_screening_documents(store):
        cid = str(doc["candidate_id"])
        if cid not in out:
            out[cid] = Candidate(cid, Structure.from_dict(doc["structure"]),
                                 f"store:{doc.get('campaign') or ''}")
    return list(out.values())


# --------------------------------------------------------------------------- checking
def _matcher() -> Any:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(primitive_cell=True, scale=True, attempt_supercell=True)


def stored_structures(store: Any, protocol_fingerprint: str | None = None,
                      ) -> list[tuple[str, Structure]]:
    """(label, structure) of the final electron-phonon task documents in the store.

    With ``protocol_fingerprint``, only those of that protocol: a structure computed with
    other pseudopotentials or another preset is not "already computed" for this one.
    """
    from stores.protocol import protocol_fingerprint_of
    from stores.queries import FINAL_ELPH_STATUSES, iter_elph_documents

    out = []
    for doc in iter_elph_documents(store, {"status": {"$in": list(FINAL_ELPH_STATUSES)}}):
        fingerprint = protocol_fingerprint_of(doc)
        if protocol_fingerprint is not None and fingerprint != protocol_fingerprint:
            continue
        try:
            structure = Structure.from_dict(doc["structure"])
        except Exception:
            continue
        label = (f"{doc.get('formula')} ({doc.get('status')}, protocol {fingerprint or '?'}, "
                 f"input hash {str(doc.get('input_hash'))[:10]})")
        out.append((label, structure))
    return out


def deduplicate(candidates: Sequence[Candidate],
                known: Sequence[tuple[str, Structure]] = (),
                ) -> tuple[list[Candidate], list[Rejection]]:
    """Drop candidates equal (``StructureMatcher``) to an earlier one or to a known structure.

    Comparisons are made only between structures of the same reduced formula, so the
    cost grows with the size of the largest formula group, not with the whole set.

    Parameters
    ----------
    candidates : sequence of Candidate
        In order of preference (the first of a group is kept).
    known : sequence of (label, Structure)
        Structures already computed (e.g. :func:`stored_structures`).

    Returns
    -------
    kept : list of Candidate
    rejected : list of Rejection
        Reasons ``already_computed`` (matches a known structure) or ``duplicate``.
    """
    matcher = _matcher()
    known_by_formula: dict[str, list[tuple[str, Structure]]] = defaultdict(list)
    for label, s in known:
        known_by_formula[s.composition.reduced_formula].append((label, s))
    kept_by_formula: dict[str, list[Candidate]] = defaultdict(list)
    kept, rejected = [], []
    for cand in candidates:
        formula = cand.formula
        match = next((label for label, s in known_by_formula.get(formula, [])
                      if _fit(matcher, cand.structure, s)), None)
        if match is not None:
            rejected.append(Rejection(cand.id, cand.source, "already_computed",
                                      f"the store already holds it: {match}", formula))
            continue
        twin = next((k for k in kept_by_formula.get(formula, [])
                     if _fit(matcher, cand.structure, k.structure)), None)
        if twin is not None:
            rejected.append(Rejection(cand.id, cand.source, "duplicate",
                                      f"same structure as candidate {twin.id}", formula))
            continue
        kept_by_formula[formula].append(cand)
        kept.append(cand)
    return kept, rejected


def _fit(matcher: Any, a: Structure, b: Structure) -> bool:
    try:
        return bool(matcher.fit(a, b))
    except Exception:
        return False


def check_candidate(candidate: Candidate, max_atoms: int | None = None,
                    family: Any = None, for_dfpt: bool = True) -> Rejection | None:
    """Why a candidate cannot be screened (and verified), or None.

    Parameters
    ----------
    candidate : Candidate
    max_atoms : int, optional
        Largest primitive cell allowed (None: the ``max_atoms`` setting).
    family : PseudoFamily, optional
        Pseudopotential family of the DFPT step; None skips the check.
    for_dfpt : bool
        Also check what only the DFPT verification needs (atom limit, family); False:
        only that the structure is valid, all the model's screening needs.
    """
    from workflows.qe.errors import BeteInputError, MissingPseudopotentialError
    from workflows.qe.structures import StructureCheckError, check_structure, prepare_structure

    s = candidate.structure
    formula = s.composition.reduced_formula if len(s) else None
    try:
        check_structure(s)  # the check every structure-reading command shares
        prepared = prepare_structure(s, max_atoms=10**6)
    except StructureCheckError as exc:
        return Rejection(candidate.id, candidate.source, exc.reason, str(exc), formula)
    except BeteInputError as exc:
        return Rejection(candidate.id, candidate.source, "invalid", str(exc), formula)
    if not for_dfpt:
        return None
    if max_atoms is None:
        from stores.settings import get_settings

        max_atoms = get_settings().max_atoms
    if len(prepared) > max_atoms:
        return Rejection(candidate.id, candidate.source, "too_many_atoms",
                         f"{len(prepared)} atoms in the primitive cell, more than the limit "
                         f"of {max_atoms} (--max-atoms)", formula)
    if family is not None:
        try:
            family.check(sorted({el.symbol for el in s.composition.elements}))
        except MissingPseudopotentialError as exc:
            return Rejection(candidate.id, candidate.source, "missing_pseudopotential",
                             str(exc), formula)
        except BeteInputError as exc:
            return Rejection(candidate.id, candidate.source, "missing_pseudopotential",
                             str(exc), formula)
    return None


def screen_candidates(candidates: CandidateSet | Sequence[Candidate], *,
                      max_atoms: int | None = None, family: Any = None,
                      store: Any = None, deduplicate_store: bool = True,
                      for_dfpt: bool = True, protocol_fingerprint: str | None = None,
                      ) -> CandidateSet:
    """Keep the candidates that can be screened (and verified); record why others cannot.

    Parameters
    ----------
    candidates : CandidateSet or sequence of Candidate
        Earlier rejections of a CandidateSet are carried over.
    max_atoms : int, optional
        Primitive-cell atom limit (None: the ``max_atoms`` setting).
    family : PseudoFamily, optional
        Family of the DFPT step; candidates with an element it lacks are rejected.
    store : jobflow.JobStore, optional
        Connected store: candidates matching one of its el-ph task documents are rejected.
    deduplicate_store : bool
        Compare with the store's documents (when a store is given).
    for_dfpt : bool
        Check the atom limit and the family too (see :func:`check_candidate`); screening
        alone (``False``) needs only valid structures.
    protocol_fingerprint : str, optional
        Only task documents of this protocol count as "already computed" (see
        :func:`stored_structures`).

    Returns
    -------
    CandidateSet
    """
    if isinstance(candidates, CandidateSet):
        pool, rejected = list(candidates.accepted), list(candidates.rejected)
    else:
        pool, rejected = list(candidates), []
    ok = []
    for cand in pool:
        why = check_candidate(cand, max_atoms=max_atoms, family=family, for_dfpt=for_dfpt)
        if why is None:
            ok.append(cand)
        else:
            rejected.append(why)
    known = (stored_structures(store, protocol_fingerprint)
             if store is not None and deduplicate_store else [])
    kept, dupes = deduplicate(ok, known)
    rejected += dupes
    for r in rejected:
        logger.debug("candidate %s rejected (%s): %s", r.id, r.reason, r.detail)
    return CandidateSet(kept, rejected)


# --------------------------------------------------------------------------- verification
@dataclass
class VerificationCheck:
    """What DFPT verification needs of a ranked candidate, which screening does not.

    Its pseudopotential family must cover every element and its primitive cell stay within
    the atom limit.  Only the candidates acquired for verification are checked (screening
    ranks every valid structure); :meth:`summary` says which family would verify the others.

    Attributes
    ----------
    family : PseudoFamily
        The family of the verification.
    max_atoms : int, optional
        Primitive-cell atom limit (None: the ``max_atoms`` setting).
    """

    family: Any
    max_atoms: int | None = None
    _have: set[str] | None = field(default=None, init=False, repr=False, compare=False)

    def problem(self, candidate_id: str, structure: Structure) -> Rejection | None:
        """Why the candidate cannot be verified with this family and limit, or None."""
        formula = structure.composition.reduced_formula
        lacking = sorted({el.symbol for el in structure.composition.elements}
                         - self._available())
        if lacking:
            return Rejection(candidate_id, "", "missing_pseudopotential",
                             f"no pseudopotential for {', '.join(lacking)} in family "
                             f"{self.family.name}", formula)
        return check_candidate(Candidate(candidate_id, structure), self.max_atoms, self.family)

    def _available(self) -> set[str]:
        if self._have is None:
            self._have = set(self.family.available_elements())
        return self._have

    def summary(self, left_out: Sequence[Rejection]) -> str:
        """One paragraph: who was left out of the verification, and which family covers them."""
        from workflows.qe.pseudos import family_covering

        named = "; ".join(f"{r.formula} ({r.id}): {_short(r)}" for r in left_out)
        text = f"not verifiable here, left to the next candidates: {named}"
        lacking = [r for r in left_out if r.reason == "missing_pseudopotential"]
        missing = sorted({m.strip() for r in lacking for found in
                          re.findall(r"pseudopotential for ([\w, ]+?) in family", r.detail)
                          for m in found.split(",")})
        if missing:
            needed = {el.symbol for r in lacking for el in _elements(r)} | set(missing)
            covers = family_covering(needed, exclude=self.family)
            text += (f". Family {self.family.name} has {len(self._available())} elements, "
                     f"not {', '.join(missing)}; ")
            text += (f"{covers.name} covers them: --pseudos {covers.directory}" if covers else
                     "a pslibrary or SSSP family covers every element (the shipped training "
                     "data used pslibrary-1.0.0-pbe-us): --pseudos DIR")
        return text


def _short(rejection: Rejection) -> str:
    return rejection.detail.split(" in family ")[0].split("; ")[0]


def _elements(rejection: Rejection) -> list[Any]:
    from pymatgen.core import Composition

    try:
        return list(Composition(rejection.formula or "").elements)
    except ValueError:
        return []

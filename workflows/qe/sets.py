"""The electron-phonon input set and the generator that builds it from a preset.

:class:`ElphInputGenerator` holds the preset choice (preset name + ``overrides``, the one
override hook, + pseudopotential family); :meth:`ElphInputGenerator.get_input_set` turns a
pymatgen ``Structure`` into an :class:`ElphInputSet`: the pw.x (dense-grid scf with
``la2F``, scf, optional relax), ph.x, q2r.x and matdyn.x inputs of one calculation,
mapping file names to input objects.

Examples
--------
>>> from pymatgen.core import Lattice, Structure
>>> al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
...                [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
>>> gen = ElphInputGenerator("fast", overrides={"scf": {"mixing_beta": 0.3}})
>>> inputs = gen.get_input_set(al)  # doctest: +SKIP
>>> inputs.write("run/")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monty.json import MSONable
from pymatgen.core import Element, Structure

from workflows.qe.errors import BeteInputError
from workflows.qe.inputs import Card, MatdynInput, PhInput, PwInput, Q2rInput, QEInput
from workflows.qe.preset_rules import (
    PRESETS,
    apply_overrides,
    k_grid_rule,
    load_preset,
    q_grid_rule,
)
from workflows.qe.pseudos import PseudoFamily, PseudoInfo, default_family
from workflows.qe.structures import prepare_structure

__all__ = ["ElphInputGenerator", "ElphInputSet", "FILE_NAMES", "structure_fingerprint"]

FILE_NAMES: dict[str, str] = {
    "relax": "relax.in", "scf_dense": "scf_dense.in", "scf": "scf.in", "ph": "ph.in",
    "q2r": "q2r.in", "matdyn": "matdyn.in",
}
"""Role → file name used by :meth:`ElphInputSet.write`."""

_PATH_KEYS = frozenset({"prefix", "outdir", "pseudo_dir", "fildyn", "flfrc", "flfrq", "fldos",
                        "fildvscf", "title"})
"""Namelist keys that name files or places, not physics (left out of the input hash)."""

HASH_DECIMALS = 8
"""Lattice vectors (Å) and fractional coordinates are rounded to this many decimals."""


def _round(x: float) -> float:
    return round(float(x), HASH_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def structure_fingerprint(structure: Structure) -> dict[str, Any]:
    """Rounded, JSON-ready description of a prepared structure (for hashing).

    Fractional coordinates are wrapped into [0, 1) before rounding.
    """
    return {
        "lattice_A": [[_round(x) for x in row] for row in structure.lattice.matrix],
        "species": [site.specie.symbol for site in structure],
        "frac_coords": [[_round(_round(x) % 1.0) % 1.0 for x in site.frac_coords]
                        for site in structure],
    }


@dataclass
class ElphInputSet(Mapping):
    """All QE inputs of one electron-phonon calculation; a mapping file name → input.

    Attributes
    ----------
    structure
        The prepared (primitive standard) structure the inputs describe.
    inputs
        Role (``scf_dense``, ``scf``, ``ph``, ``q2r``, ``matdyn``, optional ``relax``) →
        input object.
    k_grid, k_grid_dense, q_grid
        Γ-centred grids.
    ecutwfc, ecutrho
        Cutoffs in Ry.
    nbnd
        Number of bands.
    pseudopotentials
        Element → UPF file name.
    pseudo_md5
        Element → md5 of the UPF file.
    pseudo_dir
        Absolute family directory (pw.x ``pseudo_dir``).
    matdyn_asr_fallback
        ``asr`` values to try in order when matdyn.x writes NaN.
    parameters
        Everything above plus the resolved preset, JSON-ready (for task documents).
    """

    structure: Structure
    inputs: dict[str, QEInput]
    k_grid: list[int]
    k_grid_dense: list[int]
    q_grid: list[int]
    ecutwfc: float
    ecutrho: float
    nbnd: int
    pseudopotentials: dict[str, str]
    pseudo_md5: dict[str, str]
    pseudo_dir: str
    matdyn_asr_fallback: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)

    # --- mapping: file name -> input -------------------------------------------------------
    def _by_file(self) -> dict[str, QEInput]:
        return {FILE_NAMES[role]: obj for role, obj in self.inputs.items()}

    def __getitem__(self, name: str) -> QEInput:
        return self._by_file()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_file())

    def __len__(self) -> int:
        return len(self.inputs)

    # --- roles -----------------------------------------------------------------------------
    @property
    def scf_dense(self) -> PwInput:
        """pw.x scf on the dense grid with ``la2F`` (run first)."""
        return self.inputs["scf_dense"]  # type: ignore[return-value]

    @property
    def scf(self) -> PwInput:
        """pw.x scf on the k grid (run second, read by ph.x)."""
        return self.inputs["scf"]  # type: ignore[return-value]

    @property
    def relax(self) -> PwInput | None:
        """pw.x relax/vc-relax input when the resolved preset asks for one, else None."""
        return self.inputs.get("relax")  # type: ignore[return-value]

    @property
    def ph(self) -> PhInput:
        """ph.x input for the whole q grid."""
        return self.inputs["ph"]  # type: ignore[return-value]

    @property
    def q2r(self) -> Q2rInput:
        """q2r.x input."""
        return self.inputs["q2r"]  # type: ignore[return-value]

    @property
    def matdyn(self) -> MatdynInput:
        """matdyn.x input with the first ``asr`` of :attr:`matdyn_asr_fallback`."""
        return self.inputs["matdyn"]  # type: ignore[return-value]

    @property
    def files(self) -> dict[str, str]:
        """Names of the files the runs exchange (dyn, force constants, freq, DOS)."""
        return {
            "fildyn": self.ph.get("fildyn"), "flfrc": self.q2r.get("flfrc"),
            "flfrq": self.matdyn.get("flfrq"), "fldos": self.matdyn.get("fldos"),
        }

    # --- variants for the job code ---------------------------------------------------------
    def ph_input(self, start_q: int | None = None, last_q: int | None = None,
                 recover: bool = False) -> PhInput:
        """ph.x input for a slice of the irreducible q points, or a restart.

        Parameters
        ----------
        start_q, last_q
            1-based indices of the first and last irreducible q point to compute (ph.x's
            ``start_q``/``last_q``); ``start_q=last_q=i`` computes q point i only (fan-out:
            one job per q, each on a copy of the scf ``outdir``).  None = ph.x default.
        recover
            Set ``recover=.true.`` to restart an interrupted run from its ``_ph*`` files.

        Raises
        ------
        BeteInputError
            For indices that are not positive integers or ``last_q < start_q``.
        """
        for name, value in (("start_q", start_q), ("last_q", last_q)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise BeteInputError(f"{name} must be a positive integer (1-based), got {value!r}")
        if start_q is not None and last_q is not None and last_q < start_q:
            raise BeteInputError(f"last_q ({last_q}) is smaller than start_q ({start_q})")
        new = copy.deepcopy(self.ph)
        new.set("inputph", "start_q", start_q)
        new.set("inputph", "last_q", last_q)
        new.set("inputph", "recover", True if recover else None)
        return new

    def matdyn_input(self, asr: str) -> MatdynInput:
        """matdyn.x input with another acoustic sum rule (see :attr:`matdyn_asr_fallback`)."""
        if asr not in ("no", "simple", "crystal", "one-dim", "zero-dim"):
            raise BeteInputError(f"unknown matdyn asr {asr!r}; use one of "
                                 f"{', '.join(self.matdyn_asr_fallback)}")
        new = copy.deepcopy(self.matdyn)
        new.set("input", "asr", asr)
        return new

    # --- hashing and writing ---------------------------------------------------------------
    def hash_payload(self) -> dict[str, Any]:
        """The JSON-ready data :meth:`input_hash` digests (physics only, no paths)."""
        inputs = {}
        for role, obj in sorted(self.inputs.items()):
            namelists = {nl: {k: v for k, v in block.items() if k not in _PATH_KEYS}
                         for nl, block in obj.namelists.items()}
            card = obj.card("K_POINTS")
            inputs[role] = {"namelists": namelists,
                            "k_points": [list(r) for r in card.rows] if card else None}
        return {
            "structure": structure_fingerprint(self.structure),
            "inputs": inputs,
            "masses_amu": self.parameters.get("masses_amu"),
            "pseudopotential_md5": dict(sorted(self.pseudo_md5.items())),
            "matdyn_asr_fallback": list(self.matdyn_asr_fallback),
        }

    def input_hash(self) -> str:
        """sha256 of :meth:`hash_payload`: same physics → same hash, in any process."""
        text = json.dumps(self.hash_payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write every input into ``directory`` (created if needed).

        Returns
        -------
        dict
            Role → path written.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return {role: obj.write_file(directory / FILE_NAMES[role])
                for role, obj in self.inputs.items()}


def _section_merge(resolved: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, dict]:
    merged: dict[str, dict[str, Any]] = {}
    for name in names:
        for namelist, block in (resolved.get(name) or {}).items():
            merged.setdefault(namelist, {}).update(copy.deepcopy(block))
    return merged


@dataclass
class ElphInputGenerator(MSONable):
    """Recipe for the QE electron-phonon inputs of a structure.

    Parameters
    ----------
    preset
        ``"fast"``, ``"standard"``, ``"accurate"`` or a YAML file (``base:`` names the
        preset it modifies).
    overrides
        The override hook: rule keys and namelist sections merged over the preset (see
        :mod:`workflows.qe.preset_rules` and ``docs/pseudopotentials-and-presets.md``).
    family
        A :class:`PseudoFamily`, a path/name for :meth:`PseudoFamily.from_path`, or None for
        the ``pseudo_family`` setting (read at call time; Debian LDA when unset).
    max_atoms
        Atom limit of the prepared cell; None reads the ``max_atoms`` setting at call time.
    """

    preset: str | Path = "fast"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    family: PseudoFamily | str | Path | None = None
    max_atoms: int | None = None

    def resolved_preset(self) -> dict[str, Any]:
        """The preset with ``overrides`` applied (a new dict every call)."""
        return apply_overrides(load_preset(self.preset), self.overrides)

    def pinned(self) -> ElphInputGenerator:
        """A copy that builds the same inputs in any process, on any machine, later.

        What the generator leaves to the settings is read now: the ``pseudo_family``
        setting (else Debian LDA) and ``max_atoms``; family paths are made absolute.  The
        flow's jobs carry this copy (JSON via :class:`~monty.json.MSONable`), so a
        FireWorks worker with other settings or another working directory builds the
        inputs whose hash the flow was submitted under.
        """
        from stores.settings import get_settings

        family = self.family
        if family is None:
            family = get_settings().pseudo_family or "debian"
        if not isinstance(family, PseudoFamily) and str(family).lower() not in (
                "debian", "debian-lda"):
            family = str(Path(family).expanduser().resolve())
        preset = str(self.preset)
        if preset not in PRESETS:  # a YAML file
            preset = str(Path(preset).expanduser().resolve())
        max_atoms = self.max_atoms if self.max_atoms is not None else get_settings().max_atoms
        return replace(self, preset=preset, overrides=copy.deepcopy(dict(self.overrides)),
                       family=family, max_atoms=max_atoms)

    def get_family(self) -> PseudoFamily:
        """The pseudopotential family, resolved now."""
        if isinstance(self.family, PseudoFamily):
            return self.family
        if self.family is None:
            return default_family()
        return PseudoFamily.from_path(self.family)

    def get_input_set(self, structure: Structure) -> ElphInputSet:
        """Prepare ``structure`` and build every input of the el-ph calculation.

        Raises
        ------
        BeteInputError
            Bad structure or preset (message names cause and fix).
        MissingPseudopotentialError
            An element the family does not cover.
        """
        resolved = self.resolved_preset()
        family = self.get_family()
        prepared = prepare_structure(structure, max_atoms=self.max_atoms,
                                     symprec=resolved["symprec"], primitive=resolved["primitive"])
        species = list(dict.fromkeys(site.specie.symbol for site in prepared))
        pseudos = family.check(species)
        grids = self._grids(prepared, resolved)
        ecutwfc, ecutrho = self._cutoffs(pseudos, resolved)
        n_valence = sum(pseudos[site.specie.symbol].z_valence for site in prepared)
        nbnd = (resolved["nbnd"]
                or math.ceil(resolved["nbnd_factor"] * n_valence) + resolved["nbnd_extra"])
        masses = {el: float(resolved["masses"].get(el, float(Element(el).atomic_mass)))
                  for el in species}
        ctx = {"structure": prepared, "species": species, "pseudos": pseudos,
               "masses": masses, "ecutwfc": ecutwfc, "ecutrho": ecutrho, "nbnd": nbnd,
               "pseudo_dir": str(family.directory.resolve()), **grids}
        inputs: dict[str, QEInput] = {}
        if resolved["relax"]:
            inputs["relax"] = self._pw(resolved, ctx, resolved["relax"], ("pw", "pw_relax"),
                                       grids["k_grid"])
        inputs["scf_dense"] = self._pw(resolved, ctx, "scf", ("pw", "scf", "scf_dense"),
                                       grids["k_grid_dense"])
        inputs["scf"] = self._pw(resolved, ctx, "scf", ("pw", "scf", "scf_coarse"),
                                 grids["k_grid"])
        inputs.update(self._phonon_inputs(resolved, ctx))
        parameters = {
            "preset": resolved["name"],
            "recipe": copy.deepcopy(resolved),  # key kept: stored documents and hashes use it
            **{k: list(v) for k, v in grids.items()},
            "ecutwfc": ecutwfc, "ecutrho": ecutrho, "nbnd": nbnd, "n_valence": n_valence,
            "masses_amu": masses,
            "family": {"name": family.name, "directory": ctx["pseudo_dir"]},
            "functional": next(iter(pseudos.values())).functional,
            "pseudopotentials": {el: {"filename": p.filename, "md5": p.md5,
                                      "functional": p.functional, "z_valence": p.z_valence,
                                      "ecutwfc_Ry": p.ecutwfc_Ry, "ecutrho_Ry": p.ecutrho_Ry,
                                      "cutoff_source": p.cutoff_source}
                                 for el, p in sorted(pseudos.items())},
            "matdyn_asr_fallback": list(resolved["matdyn_asr_fallback"]),
            "inputs": {role: obj.as_dict()["namelists"] for role, obj in inputs.items()},
        }
        return ElphInputSet(
            structure=prepared, inputs=inputs, k_grid=grids["k_grid"],
            k_grid_dense=grids["k_grid_dense"], q_grid=grids["q_grid"], ecutwfc=ecutwfc,
            ecutrho=ecutrho, nbnd=nbnd,
            pseudopotentials={el: p.filename for el, p in sorted(pseudos.items())},
            pseudo_md5={el: p.md5 for el, p in sorted(pseudos.items())},
            pseudo_dir=ctx["pseudo_dir"],
            matdyn_asr_fallback=tuple(resolved["matdyn_asr_fallback"]), parameters=parameters,
        )

    def get_relax_input(self, structure: Structure, calculation: str = "vc-relax") -> PwInput:
        """A pw.x relax/vc-relax input alone (the flow relaxes, then calls get_input_set)."""
        generator = replace(self, overrides={**self.overrides, "relax": calculation})
        relax = generator.get_input_set(structure).relax
        if relax is None:  # pragma: no cover - relax is set above
            raise BeteInputError("no relax input was generated")
        return relax

    # --- rules -----------------------------------------------------------------------------
    @staticmethod
    def _grids(structure: Structure, resolved: Mapping[str, Any]) -> dict[str, list[int]]:
        lengths = structure.lattice.reciprocal_lattice.abc  # Å⁻¹, 2π included
        q_grid = list(resolved["q_grid"] or q_grid_rule(lengths, resolved["q_spacing"],
                                                      resolved["q_min"]))
        k_grid = list(resolved["k_grid"] or k_grid_rule(
            lengths, resolved["k_spacing"], resolved["k_min"],
            q_grid if resolved["k_multiple_of_q"] else None))
        dense = list(resolved["k_grid_dense"] or [resolved["dense_factor"] * k for k in k_grid])
        if any(d % q for d, q in zip(dense, q_grid, strict=True)):
            raise BeteInputError(
                f"dense k grid {dense} is not a multiple of the q grid {q_grid}; ph.x's "
                "interpolated electron-phonon needs k+q on the dense grid: change "
                "'k_grid_dense' or 'q_grid'")
        return {"k_grid": k_grid, "k_grid_dense": dense, "q_grid": q_grid}

    @staticmethod
    def _cutoffs(pseudos: Mapping[str, PseudoInfo], resolved: Mapping[str, Any]
                 ) -> tuple[float, float]:
        scale = resolved["ecut_scale"]
        wfc = resolved["ecutwfc"]
        if wfc is None:
            wfc = scale * max(p.ecutwfc_Ry for p in pseudos.values())
            if resolved["ecut_cap"] is not None:
                wfc = min(float(resolved["ecut_cap"]), wfc)
        rho = resolved["ecutrho"]
        if rho is None:
            rho = max(scale * max(p.ecutrho_Ry for p in pseudos.values()),
                      resolved["dual"] * wfc)
        if rho < 4 * wfc:
            raise BeteInputError(f"ecutrho ({rho} Ry) < 4 × ecutwfc ({wfc} Ry); QE refuses "
                                 "this: raise 'ecutrho' or lower 'ecutwfc'")
        return float(wfc), float(rho)

    # --- input builders --------------------------------------------------------------------
    @staticmethod
    def _structure_cards(ctx: Mapping[str, Any], k_grid: list[int]) -> list[Card]:
        structure = ctx["structure"]
        return [
            Card("ATOMIC_SPECIES", None, [
                (el, repr(ctx["masses"][el]), ctx["pseudos"][el].filename)
                for el in ctx["species"]]),
            Card("CELL_PARAMETERS", "angstrom",
                 [tuple(f"{x:.10f}" for x in row) for row in structure.lattice.matrix]),
            Card("ATOMIC_POSITIONS", "crystal",
                 [(site.specie.symbol, *(f"{x:.10f}" for x in site.frac_coords))
                  for site in structure]),
            Card("K_POINTS", "automatic", [(*(str(k) for k in k_grid), "0", "0", "0")]),
        ]

    def _pw(self, resolved: Mapping[str, Any], ctx: Mapping[str, Any], calculation: str,
            sections: tuple[str, ...], k_grid: list[int]) -> PwInput:
        merged = _section_merge(resolved, sections)
        control = {"calculation": calculation, "prefix": resolved["prefix"],
                   "outdir": resolved["outdir"], "pseudo_dir": ctx["pseudo_dir"],
                   **merged.pop("control", {})}
        system = {"ibrav": 0, "nat": len(ctx["structure"]), "ntyp": len(ctx["species"]),
                  "ecutwfc": ctx["ecutwfc"], "ecutrho": ctx["ecutrho"], "nbnd": ctx["nbnd"],
                  **merged.pop("system", {})}
        namelists = {"control": control, "system": system,
                     "electrons": merged.pop("electrons", {})}
        if calculation in ("relax", "vc-relax"):
            namelists["ions"] = merged.pop("ions", {})
        if calculation == "vc-relax":
            namelists["cell"] = merged.pop("cell", {})
        return PwInput(namelists=namelists, cards=self._structure_cards(ctx, k_grid))

    @staticmethod
    def _phonon_inputs(resolved: Mapping[str, Any], ctx: Mapping[str, Any]
                       ) -> dict[str, QEInput]:
        prefix = resolved["prefix"]
        q1, q2, q3 = ctx["q_grid"]
        amass = {f"amass({i + 1})": ctx["masses"][el] for i, el in enumerate(ctx["species"])}
        inputph = {"prefix": prefix, "outdir": resolved["outdir"], "fildyn": f"{prefix}.dyn",
                   "ldisp": True, "nq1": q1, "nq2": q2, "nq3": q3, **amass,
                   **_section_merge(resolved, ("ph",)).get("inputph", {})}
        q2r = {"fildyn": f"{prefix}.dyn", "flfrc": f"{prefix}.fc",
               **_section_merge(resolved, ("q2r",)).get("input", {})}
        matdyn = {"asr": resolved["matdyn_asr_fallback"][0], "flfrc": f"{prefix}.fc",
                  "flfrq": f"{prefix}.freq", "fldos": f"{prefix}.phdos",
                  **_section_merge(resolved, ("matdyn",)).get("input", {})}
        formula = ctx["structure"].composition.reduced_formula
        return {
            "ph": PhInput(namelists={"inputph": inputph}, title=f"el-ph {formula}"),
            "q2r": Q2rInput(namelists={"input": q2r}),
            "matdyn": MatdynInput(namelists={"input": matdyn}),
        }

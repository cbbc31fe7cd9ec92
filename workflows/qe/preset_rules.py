"""Presets (YAML package data), the override scheme, and the grid/cutoff rules.

A *resolved preset* is a preset after the user's overrides: a plain dict with

* scalar rule keys (:data:`RULE_KEYS`): grid spacings, cutoff rules, explicit grids, ...;
* namelist sections (:data:`SECTIONS`) ``pw``, ``scf``, ``scf_dense``, ``scf_coarse``,
  ``pw_relax``, ``ph``, ``q2r``, ``matdyn``, each ``{namelist: {key: value}}``.

Overrides use the same shape.  Inside a section a key may be given flat
(``{"scf": {"mixing_beta": 0.2}}``: its namelist is looked up) or nested
(``{"scf": {"electrons": {"mixing_beta": 0.2}}}``); ``None`` deletes a key.  Keys the
generator derives (``ecutwfc``, ``nat``, ``nq1``, ...) are refused inside sections with
a pointer to the rule key that sets them.  Presets are cached read-only and every
:func:`load_preset` call returns a deep copy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from workflows.qe.errors import BeteInputError

__all__ = [
    "PRESETS", "RULE_KEYS", "SECTIONS", "RESERVED_KEYS", "MATDYN_ASR_FALLBACK",
    "load_preset", "apply_overrides", "q_grid_rule", "k_grid_rule", "describe_preset",
]

PRESETS = ("fast", "standard", "accurate")
"""Presets shipped as package data in ``workflows/qe/presets``."""

MATDYN_ASR_FALLBACK = ("crystal", "simple", "no")
"""Order in which matdyn.x's ``asr`` is tried when ``a2F.dos*`` or the DOS holds NaN."""

RULE_KEYS: dict[str, str] = {
    "name": "preset name (recorded, not physics)",
    "description": "one-line description",
    "symprec": "spglib tolerance (Å) for the primitive standard cell",
    "primitive": "reduce to the primitive standard cell",
    "relax": "null, 'relax' or 'vc-relax': relax before the el-ph runs",
    "k_spacing": "k grid: k_i = max(k_min, ceil(|b_i|/k_spacing)), |b_i| in Å⁻¹ with 2π",
    "k_min": "smallest k subdivision",
    "q_spacing": "q grid: q_i = max(q_min, round(|b_i|/q_spacing)) (ties to even)",
    "q_min": "smallest q subdivision",
    "k_multiple_of_q": "round k_i up to a multiple of q_i",
    "dense_factor": "dense (la2F) grid = dense_factor × k grid",
    "k_grid": "explicit k grid [n1, n2, n3] (replaces the rule)",
    "k_grid_dense": "explicit dense k grid (replaces dense_factor)",
    "q_grid": "explicit q grid (replaces the rule)",
    "ecut_scale": "factor on the largest suggested cutoffs",
    "ecut_cap": "upper bound on ecutwfc (Ry) or null",
    "dual": "ecutrho ≥ dual × ecutwfc",
    "ecutwfc": "explicit ecutwfc (Ry), replaces the rule",
    "ecutrho": "explicit ecutrho (Ry), replaces the rule",
    "nbnd_factor": "nbnd = ceil(nbnd_factor × N_valence) + nbnd_extra",
    "nbnd_extra": "see nbnd_factor",
    "nbnd": "explicit nbnd, replaces the rule",
    "masses": "element → mass (amu) replacing pymatgen's atomic_mass (isotopes)",
    "prefix": "QE prefix shared by all runs",
    "outdir": "QE outdir shared by all runs (relative to the run directory)",
    "matdyn_asr_fallback": "asr values tried in order when matdyn writes NaN",
}
"""Scalar preset keys and what they mean."""

SECTIONS: dict[str, str] = {
    "pw": "pw", "scf": "pw", "scf_dense": "pw", "scf_coarse": "pw", "pw_relax": "pw",
    "ph": "ph", "q2r": "q2r", "matdyn": "matdyn",
}
"""Namelist sections → the code they configure.  ``pw`` applies to every pw.x input,
``scf`` to both scf runs, ``scf_dense`` / ``scf_coarse`` / ``pw_relax`` to one input."""

NAMELISTS: dict[str, tuple[str, ...]] = {
    "pw": ("control", "system", "electrons", "ions", "cell"),
    "ph": ("inputph",), "q2r": ("input",), "matdyn": ("input",),
}

_PW_KEYS: dict[str, str] = {
    "control": "calculation title verbosity restart_mode wf_collect nstep iprint tstress "
    "tprnfor dt outdir wfcdir prefix lkpoint_dir max_seconds etot_conv_thr forc_conv_thr "
    "disk_io pseudo_dir tefield dipfield lelfield nberrycyc lorbm lberry gdir nppstr",
    "system": "ibrav celldm a b c cosab cosac cosbc nat ntyp nbnd tot_charge starting_charge "
    "tot_magnetization starting_magnetization ecutwfc ecutrho ecutfock nr1 nr2 nr3 nr1s nr2s "
    "nr3s nosym nosym_evc noinv no_t_rev force_symmorphic use_all_frac occupations "
    "one_atom_occupations degauss smearing nspin noncolin ecfixed qcutz q2sigma input_dft "
    "exx_fraction lda_plus_u hubbard_u lspinorb assume_isolated vdw_corr la2f",
    "electrons": "electron_maxstep scf_must_converge conv_thr adaptive_thr conv_thr_init "
    "mixing_mode mixing_beta mixing_ndim diagonalization diago_thr_init diago_full_acc "
    "startingpot startingwfc tqr real_space",
    "ions": "ion_dynamics ion_positions pot_extrapolation wfc_extrapolation upscale bfgs_ndim "
    "trust_radius_max trust_radius_min trust_radius_ini",
    "cell": "cell_dynamics press wmass cell_factor press_conv_thr cell_dofree",
}
PW_KEY_NAMELIST = {key: nl for nl, keys in _PW_KEYS.items() for key in keys.split()}
"""pw.x key → namelist, for flat keys in override sections."""

RESERVED_KEYS: dict[str, dict[str, str]] = {
    "pw": {
        "calculation": "the input's role ('relax' key for relaxations)",
        "prefix": "'prefix'", "outdir": "'outdir'", "pseudo_dir": "the pseudopotential family",
        "ibrav": "the structure (always ibrav=0)", "celldm": "the structure", "a": "the structure",
        "b": "the structure", "c": "the structure", "cosab": "the structure",
        "cosac": "the structure", "cosbc": "the structure", "nat": "the structure",
        "ntyp": "the structure", "ecutwfc": "'ecutwfc' (or the cutoff rule keys)",
        "ecutrho": "'ecutrho' (or 'dual')", "nbnd": "'nbnd' (or 'nbnd_factor'/'nbnd_extra')",
    },
    "ph": {
        "prefix": "'prefix'", "outdir": "'outdir'", "ldisp": "the protocol (always .true.)",
        "nq1": "'q_grid'", "nq2": "'q_grid'", "nq3": "'q_grid'", "fildyn": "the input set",
        "start_q": "ElphInputSet.ph_input(start_q=...)",
        "last_q": "ElphInputSet.ph_input(last_q=...)",
        "recover": "ElphInputSet.ph_input(recover=True)", "amass": "'masses'",
    },
    "q2r": {"fildyn": "the input set", "flfrc": "the input set"},
    "matdyn": {
        "flfrc": "the input set", "flfrq": "the input set", "fldos": "the input set",
        "asr": "'matdyn_asr_fallback' (its first entry)", "amass": "'masses'",
    },
}
"""Keys derived by the generator, per code, with the preset key that controls them."""


@cache
def _preset_text(name: str) -> str:
    return resources.files("workflows.qe").joinpath("presets", f"{name}.yaml").read_text()


def load_preset(preset: str | Path) -> dict[str, Any]:
    """A fresh (deep-copied) resolved-preset dict for a shipped preset name or a YAML file path.

    Raises
    ------
    BeteInputError
        When the name is unknown or the file cannot be read.
    """
    name = str(preset)
    if name in PRESETS:
        data = yaml.safe_load(_preset_text(name))
        if "base" in data:  # a shipped preset written as changes to another one
            data = apply_overrides(load_preset(data.pop("base")), data)
    else:
        path = Path(name).expanduser()
        if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
            raise BeteInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} "
                                 "or give a YAML file with the same keys")
        base = yaml.safe_load(path.read_text()) or {}
        parent = base.pop("base", "fast")
        data = apply_overrides(load_preset(parent), base)
    return copy.deepcopy(data)


def describe_preset(preset: str | Path) -> str:
    """``name (description)`` of a shipped preset or YAML file, for a command's first line."""
    data = load_preset(preset)
    return f"{data.get('name') or preset} ({data.get('description') or 'no description'})"


def _reserved_error(code: str, key: str) -> BeteInputError:
    base = key.split("(")[0]
    where = RESERVED_KEYS[code][base]
    return BeteInputError(f"{code}.x key {key!r} is set by the generator from {where}; "
                          "change that instead of the namelist value")


def _set_key(section: dict[str, Any], code: str, namelist: str, key: str, value: Any) -> None:
    key = key.replace(" ", "").lower()
    if key.split("(")[0] in RESERVED_KEYS[code]:
        raise _reserved_error(code, key)
    block = section.setdefault(namelist, {})
    if value is None:
        block.pop(key, None)
    else:
        block[key] = copy.deepcopy(value)


def _namelist_for(code: str, key: str) -> str:
    if code != "pw":
        return NAMELISTS[code][0]
    base = key.split("(")[0].lower()
    if base in PW_KEY_NAMELIST:
        return PW_KEY_NAMELIST[base]
    raise BeteInputError(
        f"unknown pw.x key {key!r}; check the spelling, or give it nested as "
        f"{{'system': {{'{key}': ...}}}} (namelist named) to set it anyway")


def _merge_section(section: dict[str, Any], code: str, updates: Mapping[str, Any]) -> None:
    for key, value in updates.items():
        lkey = str(key).lower()
        if lkey in NAMELISTS[code] and (isinstance(value, Mapping) or value is None):
            if value is None:
                section.pop(lkey, None)
                continue
            for sub, subvalue in value.items():
                _set_key(section, code, lkey, str(sub), subvalue)
        else:
            _set_key(section, code, _namelist_for(code, lkey), lkey, value)


def apply_overrides(preset: Mapping[str, Any], overrides: Mapping[str, Any] | None
                    ) -> dict[str, Any]:
    """Return a new resolved preset: ``preset`` with ``overrides`` merged in, then validated.

    Parameters
    ----------
    preset
        A preset dict (not modified).
    overrides
        Rule keys (replace the value; ``masses`` merges per element) and sections (merged
        key by key; ``None`` deletes a key).

    Raises
    ------
    BeteInputError
        Unknown keys, reserved namelist keys, or invalid values.
    """
    result = copy.deepcopy(dict(preset))
    for key, value in (overrides or {}).items():
        if key in SECTIONS:
            if value is not None and not isinstance(value, Mapping):
                raise BeteInputError(f"override section {key!r} must be a mapping of "
                                     "namelist keys to values")
            section = result.setdefault(key, {})
            _merge_section(section, SECTIONS[key], value or {})
        elif key == "masses" and isinstance(value, Mapping):
            result.setdefault("masses", {}).update(copy.deepcopy(dict(value)))
        elif key in RULE_KEYS:
            result[key] = copy.deepcopy(value)
        else:
            raise BeteInputError(
                f"unknown override {key!r}; rule keys: {', '.join(RULE_KEYS)}; namelist "
                f"sections: {', '.join(SECTIONS)}")
    validate_preset(result)
    return result


def _grid_ok(value: Any) -> bool:
    return (isinstance(value, Sequence) and len(value) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value))


def validate_preset(preset: Mapping[str, Any]) -> None:
    """Check value types and ranges of a preset.

    Raises
    ------
    BeteInputError
        Naming the first bad key and what it should be.
    """
    missing = [k for k in RULE_KEYS if k not in preset]
    if missing:
        raise BeteInputError(f"preset lacks {', '.join(missing)}; start from a shipped preset")
    for key in ("k_spacing", "q_spacing", "symprec", "ecut_scale", "dual", "nbnd_factor"):
        value = preset[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0
        ):
            raise BeteInputError(f"{key!r} must be a positive number, got {value!r}")
    for key in ("k_min", "q_min", "dense_factor", "nbnd_extra"):
        value = preset[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BeteInputError(f"{key!r} must be a non-negative integer, got {value!r}")
    for key in ("k_grid", "k_grid_dense", "q_grid"):
        if preset[key] is not None and not _grid_ok(preset[key]):
            raise BeteInputError(f"{key!r} must be null or three positive integers, "
                                 f"got {preset[key]!r}")
    for key in ("ecut_cap", "ecutwfc", "ecutrho"):
        value = preset[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value <= 0):
            raise BeteInputError(f"{key!r} must be null or a positive number (Ry), got {value!r}")
    nbnd = preset["nbnd"]
    if nbnd is not None and (isinstance(nbnd, bool) or not isinstance(nbnd, int) or nbnd < 1):
        raise BeteInputError(f"'nbnd' must be null or a positive integer, got {nbnd!r}")
    if preset["relax"] not in (None, "relax", "vc-relax"):
        raise BeteInputError(f"'relax' must be null, 'relax' or 'vc-relax', got "
                             f"{preset['relax']!r}")
    asr = preset["matdyn_asr_fallback"]
    allowed = {"no", "simple", "crystal", "one-dim", "zero-dim"}
    if not isinstance(asr, Sequence) or isinstance(asr, str) or not asr or not set(asr) <= allowed:
        raise BeteInputError(f"'matdyn_asr_fallback' must be a non-empty list drawn from "
                             f"{sorted(allowed)}, got {asr!r}")
    if not isinstance(preset["masses"], Mapping):
        raise BeteInputError("'masses' must map element symbols to masses in amu")


def q_grid_rule(reciprocal_lengths: Sequence[float], spacing: float, minimum: int) -> list[int]:
    """q_i = max(minimum, round(|b_i| / spacing)), Python ``round`` (ties to even).

    >>> q_grid_rule([2.6, 2.6, 2.6], 1.3, 2)
    [2, 2, 2]
    """
    return [max(minimum, round(b / spacing)) for b in reciprocal_lengths]


def k_grid_rule(reciprocal_lengths: Sequence[float], spacing: float, minimum: int,
                multiple_of: Sequence[int] | None = None) -> list[int]:
    """k_i = max(minimum, ceil(|b_i| / spacing)), rounded up to a multiple of ``multiple_of``.

    >>> k_grid_rule([1.48, 1.48, 1.48], 0.30, 2, multiple_of=[2, 2, 2])
    [6, 6, 6]
    """
    grid = [max(minimum, math.ceil(b / spacing)) for b in reciprocal_lengths]
    if multiple_of is not None:
        grid = [math.ceil(k / q) * q for k, q in zip(grid, multiple_of, strict=True)]
    return grid

"""Write ``betenet_model/data/element_descriptors.json`` from pymatgen's element data.

The model package imports nothing but numpy/torch/e3nn, so the descriptor table it uses is
generated once from pymatgen and shipped as JSON (a trained checkpoint must not change when
pymatgen revises a value). ``tests/betenet_model/test_elements.py`` checks that the shipped
table still equals what this script produces. Run from the repository root::

    python scripts/make_element_descriptors.py
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "betenet_model" / "data" / "element_descriptors.json"

COLUMNS = [
    "group", "row", "block_s", "block_p", "block_d", "block_f", "pauling_electronegativity",
    "atomic_radius_A", "covalent_radius_A", "valence_s", "valence_p", "valence_d", "valence_f",
    "valence_total", "atomic_mass_amu", "inverse_sqrt_mass", "mendeleev_number",
    "first_ionization_eV", "electron_affinity_eV", "molar_volume_cm3", "melting_point_K",
]


NOBLE_GASES = (2, 10, 18, 36, 54, 86, 118)


def _valence_counts(z: int) -> dict[str, float | None]:
    """Electrons outside the preceding noble-gas core, per l (Nb: [Kr] 4d4 5s1 -> d 4, s 1).

    All None where pymatgen has no electronic structure (some superheavy elements).
    """
    from pymatgen.core import Element

    if "Electronic structure" not in Element.from_Z(z).data:
        return {"s": None, "p": None, "d": None, "f": None}

    core_z = max((g for g in NOBLE_GASES if g < z), default=0)
    core = set(Element.from_Z(core_z).full_electronic_structure) if core_z else set()
    counts: dict[str, float | None] = {"s": 0.0, "p": 0.0, "d": 0.0, "f": 0.0}
    for n, orbital, occupancy in Element.from_Z(z).full_electronic_structure:
        if (n, orbital, occupancy) not in core:
            counts[orbital] = float(occupancy) + (counts[orbital] or 0.0)
    return counts


def _number(value) -> float | None:
    """A finite float, or None for missing data."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _first_number(text) -> float | None:
    """Leading number of a pymatgen data string (``"10.83 cm<sup>3</sup>"`` -> 10.83)."""
    if text is None:
        return None
    match = re.match(r"\s*([-+0-9.eE]+)", str(text))
    return _number(match.group(1)) if match else None


def element_row(z: int) -> list[float | None]:
    """Raw descriptor values of element ``z`` in :data:`COLUMNS` order (None = no data)."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    el = Element.from_Z(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valence = _valence_counts(z)
        radius = _number(el.atomic_radius) or _number(el.atomic_radius_calculated)
        ionisation = el.ionization_energies[0] if el.ionization_energies else None
        mass = float(el.atomic_mass)
        row = [
            float(el.group), float(el.row),
            *[1.0 if el.block == b else 0.0 for b in "spdf"],
            _number(el.X), radius, _number(CovalentRadius.radius.get(el.symbol)),
            valence["s"], valence["p"], valence["d"], valence["f"],
            None if valence["s"] is None else sum(v or 0.0 for v in valence.values()),
            mass, mass ** -0.5, _number(el.mendeleev_no), _number(ionisation),
            _number(el.data.get("Electron affinity")), _first_number(el.data.get("Molar volume")),
            _first_number(el.data.get("Melting point")),
        ]
    return row


def build_table() -> dict:
    """The JSON content: columns, source, raw values for Z = 1..118."""
    from importlib.metadata import version

    return {
        "format": "bete-element-descriptors-v1",
        "source": f"pymatgen {version('pymatgen')} Element data; covalent radii from "
                  "pymatgen CovalentRadius (Cordero et al. 2008)",
        "columns": COLUMNS,
        "values": [element_row(z) for z in range(1, 119)],
    }


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build_table(), indent=0) + "\n")
    print(f"wrote {OUT}")

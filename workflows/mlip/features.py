"""Per-atom foundation features: the last interaction layer of a universal potential.

A SevenNet model maps a crystal to per-atom energies through five interaction blocks; the
output of the last one (``4_equivariant_gate``: 128 invariant scalars per atom) is what its
energy read-out sees, i.e. a description of each atom's chemical environment learned from
~1.5 M DFT structures.  :func:`atom_features` runs the model up to that block (no forces, no
gradients: one forward pass, ~0.1 s for a small cell on one core) and returns those scalars;
they are a node-feature choice of the BETE-NET ensemble (``node_features="sevennet-l3i5"``,
:mod:`betenet_model.features`).  The weights come from the installed ``sevenn`` wheel (the
registry's calculator, :mod:`workflows.mlip.potentials`); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
from pymatgen.core import Structure

from workflows.mlip.potentials import PotentialError, get_potential

FEATURE_LAYER = "4_equivariant_gate"
"""Module of a SevenNet model whose output ``x`` is taken (the last interaction block)."""


def feature_settings(potential: str) -> dict[str, Any]:
    """What fixes the numbers besides the structure and the potential (enters the store key)."""
    return {"layer": FEATURE_LAYER, "potential": get_potential(potential).name}


def atom_features(structure: Structure, potential: str) -> np.ndarray:
    """``(n_sites, D)`` invariant features of every site after the last interaction block.

    Raises
    ------
    PotentialError
        Not a SevenNet potential, an element it does not cover, or a disordered cell.
    """
    import torch
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    pot = get_potential(potential)
    if pot.force_field != "SevenNet":
        raise PotentialError(f"foundation features need a SevenNet potential, not {pot.name}")
    if not structure.is_ordered:
        raise PotentialError(f"{structure.composition.reduced_formula}: disordered cell; the "
                             "features need an ordered one")
    calc = pot.calculator()
    missing = sorted({el.symbol for el in structure.composition.elements
                      if el.Z not in calc.type_map})
    if missing:
        raise PotentialError(f"{structure.composition.reduced_formula}: {pot.name} does not "
                             f"cover {', '.join(missing)}")
    data = AtomGraphData.from_numpy_dict(
        unlabeled_atoms_to_graph(structure.to_ase_atoms(), calc.cutoff, with_shift=False))
    if calc.modal:
        data["data_modality"] = calc.modal
    with torch.no_grad():
        data = calc.model._preprocess(data)
        for name, module in _modules_to_layer(calc.model):
            data = module(data)
            if name == FEATURE_LAYER:
                break
        x = data["x"].detach().cpu().double().numpy()
    if x.shape[0] != len(structure):
        raise PotentialError(f"{structure.composition.reduced_formula}: {x.shape[0]} feature "
                             f"rows for {len(structure)} sites")
    return x


def _modules_to_layer(model: Any) -> list[tuple[str, Any]]:
    names = list(model._modules)
    if FEATURE_LAYER not in names:
        raise PotentialError(f"the SevenNet model has no module {FEATURE_LAYER!r}")
    return [(n, model._modules[n]) for n in names[:names.index(FEATURE_LAYER) + 1]]


@cache
def feature_width(potential: str) -> int:
    """D of :func:`atom_features` for a potential (one evaluation of an fcc Al cell)."""
    from pymatgen.core import Lattice

    coords = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]
    al = Structure(Lattice.cubic(4.05), ["Al"] * 4, coords)
    return int(atom_features(al, potential).shape[1])


def feature_key(structure: Structure, potential: str) -> str:
    """Store key of a structure's feature document.

    The MLIP phonon key's recipe (structure hash, potential name and package version,
    settings) with the feature settings.
    """
    from workflows.mlip.flows import _sha, structure_hash

    pot = get_potential(potential)
    return _sha(structure_hash(structure), pot.name, pot.version,
                _sha(feature_settings(potential)))


def compute_feature_document(structure: Structure, potential: str,
                             source_id: str | None = None) -> Any:
    """Evaluate the features of one cell; the :class:`~stores.schemas.MLIPFeatureDocument`."""
    import time

    from stores.schemas import MLIPFeatureDocument
    from workflows.mlip.flows import structure_hash

    pot = get_potential(potential)
    pot.calculator()  # loaded outside the timing (once per process)
    start = time.perf_counter()
    x = atom_features(structure, potential)
    return MLIPFeatureDocument(
        key=feature_key(structure, potential), formula=structure.composition.reduced_formula,
        nsites=len(structure), structure_hash=structure_hash(structure), source_id=source_id,
        potential=pot.name, potential_package=pot.package, potential_version=pot.version,
        settings=feature_settings(potential), atom_features=x.tolist(),
        wall_s=time.perf_counter() - start)


def feature_documents(items: Sequence[tuple[str | None, Structure]], potential: str,
                      store: Any = None, stored_only: bool = False,
                      say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per ``(id, structure)``: its feature document, or ``{"error": reason}``.

    The store is searched once for all of them; the missing ones are evaluated here (one
    forward pass each, the model loaded once) and written to the store, unless
    ``stored_only`` (then they are reported missing). ``say`` hears every 200th evaluation.
    """
    from stores.mlip_phonons import find_mlip_phonons, write_mlip_phonon
    from stores.schemas import MLIP_FEATURES_DOC_TYPE

    out: list[dict[str, Any]] = []
    keys: list[str | None] = []
    for _id, structure in items:
        try:
            keys.append(feature_key(structure, potential))
        except PotentialError as exc:
            keys.append(None)
            out.append({"error": str(exc)})
            continue
        out.append({})
    found = (find_mlip_phonons(store, {k for k in keys if k}, MLIP_FEATURES_DOC_TYPE)
             if store is not None else {})
    done = 0
    for k, ((source_id, structure), key) in enumerate(zip(items, keys, strict=True)):
        if key is None:
            continue
        if key in found:
            out[k] = {**found[key], "reused": True}
            continue
        if stored_only:
            out[k] = {"error": f"no stored {potential} feature document"}
            continue
        try:
            doc = compute_feature_document(structure, potential, source_id)
        except PotentialError as exc:
            out[k] = {"error": str(exc)}
            continue
        if store is not None:
            write_mlip_phonon(store, doc)
        out[k] = {**doc.model_dump(mode="json"), "reused": False}
        done += 1
        if say is not None and done % 200 == 0:
            say(f"{potential} features: {done} structures evaluated")
    return out

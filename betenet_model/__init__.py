"""BETE-NET model core: crystal graphs, node inputs, target grid, the e3nn gate network, batching.

Depends on numpy, torch and e3nn only (nothing else of the project).

The names below load their module on first use (PEP 562), so ``betenet_model.variants``
and the other light modules import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "ATOMIC_MASSES": "features",
    "DEFAULT_CUTOFF": "graph",
    "DOS_BINS": "features",
    "GRID_MEV": "targets",
    "GRID_STEP_MEV": "targets",
    "FOUNDATION_FEATURES": "features",
    "model_grid": "targets",
    "ModelGrid": "targets",
    "PAPER_GRID": "targets",
    "NODE_FEATURES": "features",
    "NUM_SPECIES": "features",
    "VARIANTS": "variants",
    "BeteNet": "network",
    "Convolution": "convolution",
    "CrystalGraph": "graph",
    "EdgeTensorProduct": "edge_product",
    "GatedConvolution": "convolution",
    "GraphBatch": "batch",
    "GraphSample": "batch",
    "GridSpectrum": "targets",
    "NetworkConfig": "network_config",
    "ScalarAttrTensorProduct": "species_product",
    "atomic_masses": "features",
    "build_graph": "graph",
    "check_node_features": "features",
    "collate": "batch",
    "descriptor_names": "elements",
    "edge_embedding": "edges",
    "element_descriptors": "elements",
    "input_dim": "features",
    "load_reference_state_dict": "reference_weights",
    "make_sample": "batch",
    "node_inputs": "features",
    "resample_to_grid": "targets",
    "savgol_smooth": "targets",
    "smooth_cutoff": "edges",
    "check_graph_arrays": "graph",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` when it is first asked for."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (loaded or not)."""
    return sorted({*globals(), *_SOURCES})

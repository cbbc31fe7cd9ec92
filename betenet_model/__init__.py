"""BETE-NET model core: crystal graphs, node inputs, target grid, the e3nn gate network, batching.

Depends on numpy, torch and e3nn only (nothing else of the project).
"""

from .batch import GraphBatch, GraphSample, collate, make_sample
from .elements import descriptor_names, element_descriptors
from .features import (
    ATOMIC_MASSES,
    DOS_BINS,
    NODE_FEATURES,
    NUM_SPECIES,
    VARIANTS,
    atomic_masses,
    check_node_features,
    input_dim,
    node_inputs,
)
from .graph import DEFAULT_CUTOFF, CrystalGraph, build_graph, validate_structure
from .network import (
    BeteNet,
    Convolution,
    EdgeTensorProduct,
    GatedConvolution,
    NetworkConfig,
    ScalarAttrTensorProduct,
    edge_embedding,
    load_reference_state_dict,
    smooth_cutoff,
)
from .targets import GRID_MEV, GRID_STEP_MEV, GridSpectrum, resample_to_grid, savgol_smooth

__all__ = [
    "ATOMIC_MASSES",
    "DEFAULT_CUTOFF",
    "DOS_BINS",
    "GRID_MEV",
    "GRID_STEP_MEV",
    "NODE_FEATURES",
    "NUM_SPECIES",
    "VARIANTS",
    "BeteNet",
    "Convolution",
    "CrystalGraph",
    "EdgeTensorProduct",
    "GatedConvolution",
    "GraphBatch",
    "GraphSample",
    "GridSpectrum",
    "NetworkConfig",
    "ScalarAttrTensorProduct",
    "atomic_masses",
    "build_graph",
    "check_node_features",
    "collate",
    "descriptor_names",
    "edge_embedding",
    "element_descriptors",
    "input_dim",
    "load_reference_state_dict",
    "make_sample",
    "node_inputs",
    "resample_to_grid",
    "savgol_smooth",
    "smooth_cutoff",
    "validate_structure",
]

"""Per-crystal samples (graph + node inputs + cached edge embeddings) and their collation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from .edges import edge_embedding
from .features import node_inputs
from .graph import CrystalGraph
from .network_config import NetworkConfig
from .variants import DEFAULT_VARIANT

__all__ = ["GraphSample", "GraphBatch", "make_sample", "collate"]


@dataclass(frozen=True)
class GraphSample:
    """One crystal ready for the network (tensors, float64 by default; ``n`` sites, ``E`` edges).

    Attributes
    ----------
    node_features : torch.Tensor
        ``(n, F)`` one-hot × mass [+ site DOS].
    node_attrs : torch.Tensor
        ``(n, F)`` one-hot [+ zeros].
    atomic_numbers : torch.Tensor
        ``(n,)`` long.
    edge_src, edge_dst : torch.Tensor
        ``(E,)`` long, messages flow ``src -> dst``.
    edge_vec : torch.Tensor
        ``(E, 3)`` Å.
    edge_attr : torch.Tensor or None
        ``(E, (lmax+1)**2)`` cached :func:`betenet_model.edge_embedding` attributes.
    edge_basis : torch.Tensor or None
        ``(E, num_basis)`` cached radial basis.
    phonon_dos : torch.Tensor or None
        ``(n_bins,)`` phonon DOS of the crystal on the output grid, per atom (∫ = 3), the
        ``F(ω)`` of the ``dos`` head.
    """

    node_features: torch.Tensor
    node_attrs: torch.Tensor
    atomic_numbers: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_vec: torch.Tensor
    edge_attr: torch.Tensor | None = None
    edge_basis: torch.Tensor | None = None
    phonon_dos: torch.Tensor | None = None

    @property
    def num_nodes(self) -> int:
        """Number of sites."""
        return int(self.atomic_numbers.shape[0])


@dataclass
class GraphBatch:
    """Several crystals as one disconnected graph (``N`` nodes, ``E`` edges, ``B`` crystals).

    Attributes
    ----------
    node_features, node_attrs : torch.Tensor
        ``(N, F)``.
    atomic_numbers : torch.Tensor
        ``(N,)`` long.
    edge_src, edge_dst : torch.Tensor
        ``(E,)`` long, global node indices.
    edge_vec : torch.Tensor
        ``(E, 3)``.
    node_graph : torch.Tensor
        ``(N,)`` long, crystal of each node (0..B-1).
    n_graphs : int
        ``B``.
    edge_attr : torch.Tensor or None
        ``(E, sh)`` cached edge attributes (computed by the network if None).
    edge_basis : torch.Tensor or None
        ``(L, num_basis)`` cached radial basis: one row per edge (``L = E``) or, with
        ``edge_basis_index``, one row per distinct edge length.
    edge_basis_index : torch.Tensor or None
        ``(E,)`` long, row of ``edge_basis`` of each edge (the radial MLP then runs on ``L``
        rows instead of ``E``; bete-net batches of 32 have ~1500 edges but ~100 lengths).
    attr_unique : torch.Tensor or None
        ``(K, F)`` the distinct rows of ``node_attrs`` (computed by the network if None).
    attr_index : torch.Tensor or None
        ``(N,)`` long, row of ``attr_unique`` of each node.
    phonon_dos : torch.Tensor or None
        ``(B, n_bins)`` per-crystal phonon DOS on the output grid (when every crystal has one).
    """

    node_features: torch.Tensor
    node_attrs: torch.Tensor
    atomic_numbers: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_vec: torch.Tensor
    node_graph: torch.Tensor
    n_graphs: int
    edge_attr: torch.Tensor | None = None
    edge_basis: torch.Tensor | None = None
    edge_basis_index: torch.Tensor | None = None
    attr_unique: torch.Tensor | None = None
    attr_index: torch.Tensor | None = None
    phonon_dos: torch.Tensor | None = None

    def to(self, device=None, dtype: torch.dtype | None = None) -> GraphBatch:
        """Copy to ``device``; floating tensors to ``dtype`` (integer tensors keep theirs)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device=device, dtype=dtype if v.is_floating_point() else None)
            out[f.name] = v
        return replace(self, **out)


def make_sample(
    graph: CrystalGraph,
    site_dos=None,
    variant: str = DEFAULT_VARIANT,
    config: NetworkConfig | None = None,
    dtype: torch.dtype = torch.float64,
    node_features: str = "onehot_mass",
    atom_features=None,
    phonon_dos=None,
) -> GraphSample:
    """Node inputs and cached edge embeddings of one crystal.

    Parameters
    ----------
    graph : CrystalGraph
        From :func:`betenet_model.build_graph` (its cutoff should equal ``config.cutoff``).
    site_dos : array_like, optional
        ``(n, 51)`` site-projected phonon DOS on the target grid (CPD/FPD).
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS` (any case).
    config : NetworkConfig, optional
        Supplies cutoff, lmax, num_basis of the cached edge embeddings; ``None``: defaults.
    dtype : torch.dtype
        Floating dtype of the sample (embeddings are computed in float64 first).
    node_features : str
        Species encoding (:func:`betenet_model.node_inputs`).
    atom_features : array_like, optional
        ``(n, 128)`` standardised per-atom features of a foundation mode.
    phonon_dos : array_like, optional
        ``(n_bins,)`` phonon DOS on the output grid (``dos`` head).

    Returns
    -------
    GraphSample
    """
    cfg = config if config is not None else NetworkConfig()
    if abs(graph.cutoff - cfg.cutoff) > 1e-12:
        raise ValueError(
            f"The graph was built with cutoff {graph.cutoff} Å but the network uses {cfg.cutoff} Å."
        )
    feats, attrs = node_inputs(graph.atomic_numbers, site_dos, variant, node_features,
                               atom_features)
    if config is not None and feats.shape[1] != cfg.input_dim:
        raise ValueError(f"The {variant} {node_features} inputs have width {feats.shape[1]} but "
                         f"the network expects input_dim = {cfg.input_dim}.")
    vec = torch.from_numpy(np.ascontiguousarray(graph.edge_vec, dtype=np.float64))
    attr, basis = edge_embedding(vec, cfg.cutoff, cfg.lmax, cfg.num_basis)
    return GraphSample(
        node_features=torch.from_numpy(feats).to(dtype),
        node_attrs=torch.from_numpy(attrs).to(dtype),
        atomic_numbers=torch.from_numpy(graph.atomic_numbers.astype(np.int64)),
        edge_src=torch.from_numpy(graph.edge_src.astype(np.int64)),
        edge_dst=torch.from_numpy(graph.edge_dst.astype(np.int64)),
        edge_vec=vec.to(dtype),
        edge_attr=attr.to(dtype),
        edge_basis=basis.to(dtype),
        phonon_dos=None if phonon_dos is None else torch.as_tensor(
            np.asarray(phonon_dos, dtype=np.float64)).to(dtype),
    )


def collate(
    samples: Sequence[GraphSample],
    device=None,
    dtype: torch.dtype | None = None,
    length_resolution: float | None = 1e-6,
) -> GraphBatch:
    """Concatenate crystals into one :class:`GraphBatch` (node indices offset per crystal).

    Parameters
    ----------
    samples : sequence of GraphSample
        At least one.
    device, dtype : optional
        Target device and floating dtype (default: the samples').
    length_resolution : float or None
        Edges whose lengths agree to this many Å share one radial-basis row (the row of the
        first such edge; the network's output changes by ~this relative amount at most).
        ``None``: one basis row per edge, exact.

    Returns
    -------
    GraphBatch
        Edge embeddings are carried only when every sample has them.
    """
    if len(samples) == 0:
        raise ValueError("Cannot collate an empty list of crystals.")
    n_nodes = torch.tensor([s.num_nodes for s in samples])
    n_edges = torch.tensor([s.edge_src.shape[0] for s in samples])
    offsets = torch.repeat_interleave(torch.cumsum(n_nodes, 0) - n_nodes, n_edges)
    attrs = [s.edge_attr for s in samples if s.edge_attr is not None]
    bases = [s.edge_basis for s in samples if s.edge_basis is not None]
    cached = len(attrs) == len(bases) == len(samples)
    dos = [s.phonon_dos for s in samples if s.phonon_dos is not None]
    batch = GraphBatch(
        node_features=torch.cat([s.node_features for s in samples]),
        node_attrs=torch.cat([s.node_attrs for s in samples]),
        atomic_numbers=torch.cat([s.atomic_numbers for s in samples]),
        edge_src=torch.cat([s.edge_src for s in samples]) + offsets,
        edge_dst=torch.cat([s.edge_dst for s in samples]) + offsets,
        edge_vec=torch.cat([s.edge_vec for s in samples]),
        node_graph=torch.repeat_interleave(torch.arange(len(samples)), n_nodes),
        n_graphs=len(samples),
        edge_attr=torch.cat(attrs) if cached else None,
        edge_basis=torch.cat(bases) if cached else None,
        phonon_dos=torch.stack(dos) if len(dos) == len(samples) else None,
    )
    if cached and length_resolution is not None and batch.edge_basis is not None:
        key = torch.round(batch.edge_vec.double().norm(dim=1) / float(length_resolution)).long()
        uniq, inverse = torch.unique(key, return_inverse=True)
        first = torch.full((uniq.shape[0],), key.shape[0], dtype=torch.long)
        first = first.scatter_reduce(0, inverse, torch.arange(key.shape[0]), reduce="amin")
        batch.edge_basis = batch.edge_basis.index_select(0, first)
        batch.edge_basis_index = inverse
    attr_unique, attr_index = torch.unique(batch.node_attrs, dim=0, return_inverse=True)
    batch.attr_unique, batch.attr_index = attr_unique, attr_index.reshape(-1)
    if device is not None or dtype is not None:
        batch = batch.to(device=device, dtype=dtype)
    return batch

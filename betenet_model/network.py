"""The BETE-NET equivariant gate network (Gibson et al. 2025), written for speed.

Architecture (identical in function to e3nn's ``gate_points_2101`` network the paper used):

* one shared ``Linear(input_dim -> embed_dim) + ReLU`` embeds node features ``x`` (one-hot × mass
  [+ site DOS]) and node attributes ``z`` (one-hot [+ zeros]);
* edges: attributes ``smooth_cutoff(r / r_c) · Y_l(r̂)`` (l ≤ lmax, component normalisation),
  lengths expanded on ``num_basis`` Gaussians (× √num_basis);
* ``layers`` gated convolutions, then one convolution to ``out_dim × 0e``; each convolution is
  ``c_s · sc(x ⊗ z) + c_x · lin2(Σ_edges TP_uvu(lin1(x ⊗ z)[src], edge_attr; MLP(basis)) ⊗ z)``
  with the sum divided by √num_neighbors;
* output head (``NetworkConfig.head``): ``relu-mean`` (the paper) is ReLU per atom, mean over the
  atoms of each crystal; ``anchored`` starts from a spectrum fixed before training (the mean
  training α²F, :meth:`BeteNet.set_anchor`) and learns a bounded per-bin factor,
  ``α²F = A(ω) · exp(b·tanh(c(ω)/b))`` with ``c`` the mean over atoms of the last convolution's
  output and ``b = ln 8``: a crystal the network cannot tell apart from the training set gets the
  training mean, never a spectrum spread over bins no training record has weight in (and a bin
  where the anchor is zero stays zero: a floor there put weight at ω → 0, where α²F/ω dominates
  λ and ω_log); ``dos`` shapes α²F by the crystal's own phonons, ``α²F(ω) = α²(ω)·F(ω)`` with
  ``F`` the phonon DOS carried by the batch (``GraphBatch.phonon_dos``, per atom, e.g. from a
  universal potential) and a smooth, bounded, positive coupling function
  ``α²(ω) = A(ω)·exp(b·tanh(Σ_k c_k φ_k(ω)/b))``: ``A`` the coupling fitted on the training
  rows (:meth:`BeteNet.set_anchor`), ``φ_k`` ``coupling_basis`` Gaussians evenly spaced in
  √ω over the grid (finer at low ω, where λ and ω_log are decided) and ``c`` the atom mean of
  the last convolution; a hydride gets weight where its hydrogen modes are;
* optional ``tc_head``: one more output channel; with ``x`` its atom mean plus a fixed offset
  (``tc_anchor``, the mean training value), ``ln(1 + Tc/K) = B·tanh(x/B)``, B = ln(1 + 150),
  trained directly on Tc labels (sharing the trunk). The bound keeps a crystal unlike any
  training one from an exponential blow-up (an unbounded head put B2CN at 1100 K).

Speed: the three node-attribute tensor products (``sc``, ``lin1``, ``lin2``; > 95 % of the
parameters) are bilinear in the embedded attributes ``z``, which take one value per species. They
are evaluated as ``x[n] @ M[species(n)]`` with ``M = Σ_v z_v W[:, v, :]`` built once per forward
for the distinct attribute rows only — a 10–60× cut in arithmetic over the plain ``x ⊗ z`` product,
with exactly the same function and the parameters in e3nn's layout (weights of an e3nn reference
network load unchanged, see :func:`load_reference_state_dict`). Edge embeddings can be
precomputed once per data set (:func:`edge_embedding`, :func:`betenet_model.make_sample`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from e3nn import o3
from e3nn.math import normalize2mom, soft_one_hot_linspace

from .variants import DEFAULT_VARIANT

__all__ = [
    "NetworkConfig",
    "HEADS",
    "BeteNet",
    "GatedConvolution",
    "Convolution",
    "ScalarAttrTensorProduct",
    "EdgeTensorProduct",
    "RadialMLP",
    "edge_embedding",
    "smooth_cutoff",
    "load_reference_state_dict",
]


@dataclass
class NetworkConfig:
    """Every hyper-parameter of :class:`BeteNet` (defaults: the paper's CSO model).

    Attributes
    ----------
    input_dim : int
        Width of node features and attributes: 118 (CSO), 169 (CPD/FPD, with the site DOS).
    embed_dim : int
        Width of the shared embedding (64).
    mul : int
        Multiplicity of each hidden irrep (32 → 32×0e + 32×0o + 32×1e + 32×1o before pruning).
    lmax : int
        Highest spherical harmonic of edges and hidden features (1).
    layers : int
        Gated convolutions before the output convolution (2).
    out_dim : int
        Output scalars per crystal (51 bins of α²F).
    cutoff : float
        Radial cutoff (Å) of the smooth cutoff and of the Gaussian basis (4.0).
    num_basis : int
        Gaussian radial basis functions (10).
    radial_layers, radial_neurons : int
        Hidden layers and their width of the radial MLP (1, 100).
    num_neighbors : float
        Normaliser of the neighbour sum (divides by its square root); the reference uses 17
        (bete-net: 16.8 edges per atom with self-edges at 4 Å).
    head : str
        Output head: ``"relu-mean"`` (the paper's), ``"anchored"`` or ``"dos"`` (see the module
        docstring). Left out of :meth:`to_dict` at its default, so configurations written before
        the option existed keep their form (and digests); so are the two below.
    coupling_basis : int
        Smooth basis functions of the ``dos`` head's coupling function α²(ω).
    tc_head : bool
        A direct ln(1 + Tc) output beside the spectrum (:meth:`BeteNet.predict`).
    """

    input_dim: int = 118
    embed_dim: int = 64
    mul: int = 32
    lmax: int = 1
    layers: int = 2
    out_dim: int = 51
    cutoff: float = 4.0
    num_basis: int = 10
    radial_layers: int = 1
    radial_neurons: int = 100
    num_neighbors: float = 17.0
    head: str = "relu-mean"
    coupling_basis: int = 10
    tc_head: bool = False

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"NetworkConfig.head must be one of {HEADS}, got {self.head!r}.")
        for name in ("input_dim", "embed_dim", "mul", "out_dim", "num_basis", "radial_neurons",
                     "coupling_basis"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"NetworkConfig.{name} must be a positive integer, got {getattr(self, name)}."
                )
        if self.lmax < 0 or self.layers < 0 or self.radial_layers < 0:
            raise ValueError("NetworkConfig.lmax, layers and radial_layers must be >= 0.")
        if not (self.cutoff > 0 and self.num_neighbors > 0):
            raise ValueError("NetworkConfig.cutoff and num_neighbors must be positive.")

    def to_dict(self) -> dict:
        """Plain-JSON dict of the hyper-parameters (options added later only when not default)."""
        data = asdict(self)
        for name, default in _LATER_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        if self.head != "dos":
            data.pop("coupling_basis", None)
        return data

    @property
    def outputs(self) -> int:
        """Width of the last convolution: spectrum bins (or coupling coefficients) [+ 1 Tc]."""
        return (self.coupling_basis if self.head == "dos" else self.out_dim) + int(self.tc_head)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"Unknown NetworkConfig keys {sorted(unknown)}; known: {sorted(known)}."
            )
        return cls(**data)

    @classmethod
    def for_variant(cls, variant: str = DEFAULT_VARIANT, node_features: str = "onehot_mass",
                    **overrides) -> NetworkConfig:
        """Config of a variant and node-feature mode with optional overrides.

        ``CSO`` 118 inputs, ``CPD``/``FPD`` 169 with ``"onehot_mass"``; 21 / 72 with
        ``"descriptors"`` (:func:`betenet_model.input_dim`).
        """
        from .features import input_dim

        return cls(input_dim=input_dim(variant, node_features), **overrides)


HEADS = ("relu-mean", "anchored", "dos")
ANCHOR_LOG_BOUND = math.log(8.0)
TC_HEAD_MAX_K = 150.0
"""The Tc head's output stays below this (above every DFT Tc the models are trained on)."""
_LATER_DEFAULTS = {"head": "relu-mean", "coupling_basis": 10, "tc_head": False}
"""Options added after the first manifests: left out of ``to_dict`` at these values."""


def coupling_basis(grid_meV: torch.Tensor, n: int) -> torch.Tensor:
    """``(n, G)`` Gaussians evenly spaced in √ω from 0 to the top of the grid (width = spacing).

    √ω spacing puts more of them at low frequency (10 on a 250 meV grid: centres 0, 3, 12,
    28, 49, 77, 111, 151, 198, 250 meV), where α²F/ω sets λ and ω_log.
    """
    u = torch.sqrt(grid_meV.clamp(min=0))
    centres = torch.linspace(0.0, float(u[-1]), n, dtype=u.dtype)
    width = float(u[-1]) / max(n - 1, 1)
    return torch.exp(-0.5 * ((u[None, :] - centres[:, None]) / width) ** 2)


def smooth_cutoff(x: torch.Tensor) -> torch.Tensor:
    """``(1 - cos(π u)) / 2``, ``u = 2 (x - 1)``; 1 below x = 1/2, 0 above x = 1; ``(E,)``."""
    u = 2.0 * (x - 1.0)
    y = (1.0 - torch.cos(math.pi * u)) / 2.0
    y = torch.where(u > 0, torch.zeros_like(y), y)
    return torch.where(u < -1, torch.ones_like(y), y)


def edge_embedding(
    edge_vec: torch.Tensor, cutoff: float = 4.0, lmax: int = 1, num_basis: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge attributes and radial basis (constant during training: compute once per data set).

    Parameters
    ----------
    edge_vec : torch.Tensor
        ``(E, 3)`` edge vectors (Å); zero vectors (self-edges) give ``Y = (1, 0, 0, 0)``.
    cutoff, lmax, num_basis : float, int, int

    Returns
    -------
    edge_attr : torch.Tensor
        ``(E, (lmax + 1)**2)`` ``smooth_cutoff(r / cutoff) · Y_l(r̂)``, component normalisation,
        e3nn's (y, z, x) order for l = 1.
    edge_basis : torch.Tensor
        ``(E, num_basis)`` Gaussians on ``linspace(0, cutoff, num_basis)`` times √num_basis.
    """
    length = edge_vec.norm(dim=1)
    sh = o3.spherical_harmonics(list(range(lmax + 1)), edge_vec, True, normalization="component")
    attr = smooth_cutoff(length / cutoff)[:, None] * sh
    basis = soft_one_hot_linspace(length, 0.0, cutoff, num_basis, basis="gaussian", cutoff=False)
    return attr, basis.mul(num_basis**0.5)


_MOMENT_CONSTANTS: dict = {}


def _normalized(act):
    """``act`` scaled to unit second moment under N(0, 1), as e3nn does (constant cached)."""
    if act not in _MOMENT_CONSTANTS:
        _MOMENT_CONSTANTS[act] = float(normalize2mom(act).cst)
    cst = _MOMENT_CONSTANTS[act]
    if abs(cst - 1.0) < 1e-4:
        return act
    return lambda x: act(x).mul(cst)


class _RadialLayer(torch.nn.Module):
    """One layer of e3nn's ``FullyConnectedNet`` (no bias, weights ~ N(0, 1), 1/√fan-in)."""

    def __init__(self, h_in: int, h_out: int, act=None) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(h_in, h_out))
        self.act = act
        self.scale = h_in**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(L, h_in)`` -> ``(L, h_out)``."""
        x = x @ (self.weight * self.scale)
        return self.act(x) if self.act is not None else x


class RadialMLP(torch.nn.Sequential):
    """e3nn ``FullyConnectedNet(hs, act)``: same function, parameter names ``layer{i}.weight``.

    Parameters
    ----------
    hs : list of int
        Widths ``[num_basis, hidden..., out]``.
    act : callable
        Hidden activation (normalised to unit second moment).
    """

    def __init__(self, hs, act) -> None:
        super().__init__()
        act = _normalized(act)
        for i, (h_in, h_out) in enumerate(zip(hs[:-1], hs[1:], strict=True)):
            last = i == len(hs) - 2
            self.add_module(f"layer{i}", _RadialLayer(h_in, h_out, None if last else act))


def _tp_path_exists(irreps_in1, irreps_in2, ir_out) -> bool:
    irreps_in1 = o3.Irreps(irreps_in1).simplify()
    irreps_in2 = o3.Irreps(irreps_in2).simplify()
    ir_out = o3.Irrep(ir_out)
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1 for _, ir2 in irreps_in2)


class SpeciesGroups:
    """How nodes are packed by attribute row for the per-species products (built once a forward).

    Nodes sharing an attribute row ``k`` are placed in chunks of at most ``size`` slots (a large
    group spans several chunks); products then run as one batched matmul over the chunks.

    Parameters
    ----------
    index : torch.Tensor
        ``(N,)`` long, attribute row of each node (0..K-1).
    num_rows : int
        ``K``.
    row_map : torch.Tensor, optional
        ``(K,)`` long: chunks refer to ``row_map[k]`` (rows of a cached table) instead of ``k``.

    Attributes
    ----------
    slot : torch.Tensor
        ``(N,)`` long, position of each node in the padded ``(chunks * size)`` layout.
    chunk_row : torch.Tensor or None
        ``(chunks,)`` attribute row of each chunk; ``None`` when chunks are exactly the rows.
    chunks, size : int
    """

    def __init__(
        self, index: torch.Tensor, num_rows: int, row_map: torch.Tensor | None = None
    ) -> None:
        n = index.shape[0]
        counts = torch.bincount(index, minlength=num_rows)
        size = max(1, -(-n // max(num_rows, 1)))  # ceil(N / K): the mean group size
        nchunks = (counts + size - 1) // size  # per row
        first_chunk = torch.cumsum(nchunks, 0) - nchunks
        order = torch.argsort(index, stable=True)
        sorted_rows = index[order]
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n, device=index.device) - start[sorted_rows]
        slot_sorted = (first_chunk[sorted_rows] + rank // size) * size + rank % size
        self.slot = torch.empty_like(index)
        self.slot[order] = slot_sorted
        self.chunks = int(nchunks.sum())
        self.size = size
        if row_map is None and self.chunks == num_rows and bool(torch.all(nchunks == 1)):
            self.chunk_row = None
        else:
            rows = torch.arange(num_rows, device=index.device) if row_map is None else row_map
            self.chunk_row = torch.repeat_interleave(rows, nchunks)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` -> ``(chunks * size, D)`` (empty slots are 0)."""
        out = x.new_zeros(self.chunks * self.size, x.shape[1])
        return out.index_copy(0, self.slot, x)

    def unpack(self, y: torch.Tensor) -> torch.Tensor:
        """``(chunks * size, D)`` -> ``(N, D)``."""
        return y.index_select(0, self.slot)


class ScalarAttrTensorProduct(torch.nn.Module):
    r"""``FullyConnectedTensorProduct(irreps_in, V×0e, irreps_out)`` evaluated per species.

    ``out[n] = Σ_paths c_b Σ_{u,v} W[u, v, w] x[n, u, m] z[n, v]`` with ``c_b = 1/√(fan-in)``:
    exactly e3nn's function, computed as ``x[n] @ M[k(n)]`` with ``M[k] = Σ_v z_k[v] W[:, v, :]``
    over the distinct rows ``z_k`` of the attributes. Weights are kept per irrep ``ir`` as
    ``weight_<ir>`` of shape ``(V, U_ir, W_ir)`` (all input blocks of that irrep × all output
    blocks); :meth:`load_e3nn_weight` / :meth:`e3nn_weight` convert from / to e3nn's flat layout.

    Parameters
    ----------
    irreps_in, irreps_out : e3nn.o3.Irreps
    attr_dim : int
        ``V``: number of scalar (0e) attribute channels.
    """

    # buffers registered in __init__ (``_out_cols`` only when the output needs permuting)
    output_mask: torch.Tensor
    _out_cols: torch.Tensor

    def __init__(self, irreps_in, attr_dim: int, irreps_out) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.attr_dim = V = int(attr_dim)
        # e3nn's instruction order: for i_in, (i_attr = 0), for i_out with the same irrep
        offsets, off = {}, 0
        for a, (mu, ir_a) in enumerate(self.irreps_in):
            for b, (mw, ir_b) in enumerate(self.irreps_out):
                if ir_a == ir_b:
                    offsets[(a, b)] = off
                    off += mu * V * mw
        self.weight_numel = off
        in_slices, out_slices = self.irreps_in.slices(), self.irreps_out.slices()
        self._paths: list[tuple[str, int, int, int, tuple[int, int] | None, float]] = []
        self._e3nn_index: dict[str, torch.Tensor] = {}
        mask = torch.zeros(self.irreps_out.dim)
        out_order = []
        common = sorted({ir for _, ir in self.irreps_out} & {ir for _, ir in self.irreps_in})
        for ir in common:
            ins = [a for a, (_, ir_a) in enumerate(self.irreps_in) if ir_a == ir]
            outs = [b for b, (_, ir_b) in enumerate(self.irreps_out) if ir_b == ir]
            U = sum(self.irreps_in[a].mul for a in ins)
            Wt = sum(self.irreps_out[b].mul for b in outs)
            idx = torch.empty(V, U, Wt, dtype=torch.long)  # position in e3nn's flat weight
            u0 = 0
            for a in ins:
                mu = self.irreps_in[a].mul
                w0 = 0
                for b in outs:
                    mw = self.irreps_out[b].mul
                    block = offsets[(a, b)] + torch.arange(mu * V * mw).view(mu, V, mw)
                    idx[:, u0 : u0 + mu, w0 : w0 + mw] = block.permute(1, 0, 2)
                    w0 += mw
                u0 += mu
            d = ir.dim
            in_cols = torch.cat([torch.arange(in_slices[a].start, in_slices[a].stop) for a in ins])
            out_cols = torch.cat(
                [torch.arange(out_slices[b].start, out_slices[b].stop) for b in outs]
            )
            mask[out_cols] = 1.0
            out_order.append(out_cols)
            contiguous = bool(
                torch.equal(in_cols, torch.arange(int(in_cols[0]), int(in_cols[0]) + U * d))
            )
            name = f"weight_{ir}"
            self.register_parameter(name, torch.nn.Parameter(torch.randn(V, U, Wt)))
            if not contiguous:
                self.register_buffer(f"_in_{ir}", in_cols, persistent=False)
            self._e3nn_index[name] = idx
            span = (int(in_cols[0]), int(in_cols[0]) + U * d) if contiguous else None
            self._paths.append((str(ir), d, U, Wt, span, (U * V) ** -0.5))
        # inputs as views of one torch.split (its backward is one op, not one copy per slice)
        self._split: tuple[list[int], list[int]] | None = None
        spans = [p[4] for p in self._paths]
        if spans and all(sp is not None for sp in spans):
            sizes, starts, pos = [], [], 0
            for a0, a1 in sorted(sp for sp in spans if sp is not None):
                if a0 > pos:
                    sizes.append(a0 - pos)
                starts.append(len(sizes))
                sizes.append(a1 - a0)
                pos = a1
            if pos < self.irreps_in.dim:
                sizes.append(self.irreps_in.dim - pos)
            by_start = sorted(range(len(spans)), key=lambda i: spans[i][0])  # type: ignore[index]
            which = [0] * len(spans)
            for rank, i in enumerate(by_start):
                which[i] = starts[rank]
            self._split = (sizes, which)
        # output columns: the groups concatenated, then (only if needed) permuted into place
        order = torch.cat(out_order) if out_order else torch.zeros(0, dtype=torch.long)
        self._out_dim = self.irreps_out.dim
        self._direct = bool(
            order.numel() == self._out_dim and torch.equal(order, torch.arange(self._out_dim))
        )
        if not self._direct:
            self.register_buffer("_out_cols", order, persistent=False)
        # columns of the output reached by at least one path (e3nn's ``output_mask``)
        self.register_buffer("output_mask", mask, persistent=False)

    def load_e3nn_weight(self, flat: torch.Tensor) -> None:
        """Copy e3nn's flat ``FullyConnectedTensorProduct.weight`` ``(weight_numel,)`` in."""
        if tuple(flat.shape) != (self.weight_numel,):
            raise ValueError(
                f"Expected an e3nn weight of shape ({self.weight_numel},), got {tuple(flat.shape)}."
            )
        with torch.no_grad():
            for name, idx in self._e3nn_index.items():
                getattr(self, name).copy_(flat.to(getattr(self, name))[idx])

    def e3nn_weight(self) -> torch.Tensor:
        """The weights in e3nn's flat layout ``(weight_numel,)``."""
        out = None
        for name, idx in self._e3nn_index.items():
            w = getattr(self, name).detach()
            if out is None:
                out = w.new_empty(self.weight_numel)
            out[idx.reshape(-1)] = w.reshape(-1)
        return out if out is not None else torch.zeros(0)

    def tables(self, z_unique: torch.Tensor) -> list[torch.Tensor]:
        """Per-row matrices ``M[k] = Σ_v z_k[v] W[:, v, :] / √fan-in``, ``(K, U, W)`` per irrep."""
        K = z_unique.shape[0]
        out = []
        for ir, _, U, Wt, _, alpha in self._paths:
            w = getattr(self, f"weight_{ir}")  # (V, U, Wout)
            out.append(torch.mm(z_unique * alpha, w.view(w.shape[0], U * Wt)).view(K, U, Wt))
        return out

    def forward(
        self,
        x: torch.Tensor,
        z_unique: torch.Tensor | None,
        groups: SpeciesGroups,
        tables: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Apply the product to nodes in the packed layout of ``groups``.

        Parameters
        ----------
        x : torch.Tensor
            ``(C * P, irreps_in.dim)`` node features packed by :meth:`SpeciesGroups.pack`
            (``C`` chunks of ``P`` slots; every node of a chunk has the same attribute row).
        z_unique : torch.Tensor
            ``(K, attr_dim)`` the distinct (embedded) attribute rows.
        groups : SpeciesGroups
            The packing (row of each chunk).
        tables : list of torch.Tensor, optional
            Precomputed :meth:`tables` of the chunks (``(C, U, W)`` each, may be strided views);
            then ``z_unique`` is not used.

        Returns
        -------
        torch.Tensor
            ``(C * P, irreps_out.dim)`` in the same layout; columns without a path are 0.
        """
        C, P = groups.chunks, groups.size
        xp = x.view(C, P, x.shape[1])
        outs = []
        if tables is None:
            if z_unique is None:
                raise ValueError("z_unique is needed when tables are not given")
            if groups.chunk_row is not None:  # (C, V): cheaper than gathering (C, U, W) tables
                z_unique = z_unique.index_select(0, groups.chunk_row)
            tables = self.tables(z_unique)
        pieces = None
        if self._split is not None:
            sizes, which = self._split
            split = torch.split(xp, sizes, dim=2) if len(sizes) > 1 else (xp,)
            pieces = [split[i] for i in which]
        for k, ((ir, d, U, Wt, span, _), m) in enumerate(zip(self._paths, tables, strict=True)):
            if pieces is not None:
                xg = pieces[k]
            elif span is not None:
                xg = xp[:, :, span[0] : span[1]]
            else:
                xg = xp.index_select(2, getattr(self, f"_in_{ir}"))
            if d == 1:
                y = torch.bmm(xg, m)  # (C, P, Wout)
            else:
                xg = xg.reshape(C, P, U, d).transpose(2, 3).reshape(C, P * d, U)
                y = torch.bmm(xg, m).view(C, P, d, Wt).transpose(2, 3)  # (C, P, Wout, d)
            outs.append(y.reshape(C * P, Wt * d))
        if not outs:
            return x.new_zeros(C * P, self._out_dim)
        y = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        if self._direct:
            return y
        out = x.new_zeros(C * P, self._out_dim)
        out[:, self._out_cols] = y
        return out


class EdgeTensorProduct(torch.nn.Module):
    """e3nn's ``TensorProduct(irreps_in, irreps_sh, irreps_mid, uvu)`` with per-edge weights.

    The mid irreps and the order of per-edge weights are the reference's: one ``uvu`` path per
    (input irrep, edge irrep, output irrep allowed in ``irreps_target``), then sorted by irrep.
    All input blocks of one multiplicity (in BeteNet: all of them) are evaluated together, as
    one batched product ``x_g (E, mul, Σ d1) @ T_g (E, Σ d1, Σ D)`` with the block-diagonal
    ``T_g = Σ_j Y_j C_j``, then one product with the per-edge path weights; the column
    permutations are applied on node rows (inputs) and after the neighbour sum (outputs), so a
    convolution costs a handful of edge-sized operations (the 2-thread speed on a loaded
    machine is set by their count, see ``benchmarks/model_speed.py``).

    Parameters
    ----------
    irreps_in : e3nn.o3.Irreps
        Node features sent along edges.
    irreps_sh : e3nn.o3.Irreps
        Edge attributes (spherical harmonics).
    irreps_target : e3nn.o3.Irreps
        Irreps the convolution outputs; paths to other irreps are skipped.
    """

    # buffers registered in __init__
    _in_index: torch.Tensor
    _mid_index: torch.Tensor
    _weight_index: torch.Tensor

    def __init__(self, irreps_in, irreps_sh, irreps_target) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        target = o3.Irreps(irreps_target)
        mid: list[tuple[int, o3.Irrep]] = []
        instr: list[tuple[int, int, int]] = []
        for i, (mul, ir_in) in enumerate(self.irreps_in):
            for j, (_, ir_edge) in enumerate(self.irreps_sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in target:
                        instr.append((i, j, len(mid)))
                        mid.append((mul, ir_out))
        irreps_mid, perm, _ = o3.Irreps(mid).sort()
        self.irreps_mid = irreps_mid
        self.weight_numel = sum(self.irreps_in[i].mul for i, _, _ in instr)
        in_sl, mid_sl = self.irreps_in.slices(), irreps_mid.slices()
        sh_dim = self.irreps_sh.dim
        sh_off = [sl.start for sl in self.irreps_sh.slices()]
        # per input block: combined coupling (sh_dim, d1, D) and per-column path index
        self._blocks = []  # (slice_in, mul, d1, D, weight offsets (n_paths,), d3 list, mid slices)
        woffs = {}
        woff = 0
        for n, (i, _, _) in enumerate(instr):
            woffs[n] = woff
            woff += self.irreps_in[i].mul
        for bi, (mul, ir1) in enumerate(self.irreps_in):
            paths = [(n, j, perm[k]) for n, (i, j, k) in enumerate(instr) if i == bi]
            if not paths:
                continue
            D = sum(irreps_mid[k].ir.dim for _, _, k in paths)
            coupling = torch.zeros(sh_dim, ir1.dim, D, dtype=torch.float64)
            col = 0
            info = []
            for n, j, k in paths:
                ir2 = self.irreps_sh[j].ir
                ir3 = irreps_mid[k].ir
                # component normalisation, one path per output: sqrt(dim_out) * w3j
                cg = o3.wigner_3j(ir1.l, ir2.l, ir3.l, dtype=torch.float64) * math.sqrt(ir3.dim)
                coupling[sh_off[j] : sh_off[j] + ir2.dim, :, col : col + ir3.dim] = cg.permute(
                    1, 0, 2
                )
                info.append((woffs[n], col, ir3.dim, mid_sl[k]))
                col += ir3.dim
            self.register_buffer(
                f"_coupling{bi}", coupling.reshape(sh_dim, ir1.dim * D), persistent=False
            )
            self._blocks.append((bi, in_sl[bi], mul, ir1.dim, D, info))
        # Grouped layout: the input blocks of equal multiplicity form one group, evaluated as one
        # batched product ``x_g (E, mul, Din) @ T_g (E, Din, Dout)`` with ``T_g = edge_attr @ C_g``
        # (C_g block-diagonal over the group's blocks). Messages come out in this "natural"
        # layout (groups concatenated, each ``(mul, Dout)`` flattened); ``_mid_index`` permutes
        # its columns into e3nn's mid order and ``_weight_index`` spreads the per-path weights.
        groups: dict[int, list] = {}
        for blk in self._blocks:
            groups.setdefault(blk[2], []).append(blk)
        mid_dim = irreps_mid.dim
        mid_index = torch.empty(mid_dim, dtype=torch.long)
        weight_index = torch.empty(mid_dim, dtype=torch.long)
        in_index = []
        self._groups: list[tuple[int, int, int, int]] = []  # (mul, Din, Dout, natural offset)
        nat = 0
        for g, (mul, blks) in enumerate(groups.items()):
            din = sum(d1 for _, _, _, d1, _, _ in blks)
            dout = sum(D for *_, D, _ in blks)
            cg = torch.zeros(sh_dim, din, dout, dtype=torch.float64)
            cols = torch.empty(mul, din, dtype=torch.long)
            i0 = o0 = 0
            for bi, s_in, _, d1, D, info in blks:
                cg[:, i0 : i0 + d1, o0 : o0 + D] = getattr(self, f"_coupling{bi}").view(
                    sh_dim, d1, D
                )
                cols[:, i0 : i0 + d1] = s_in.start + torch.arange(mul * d1).view(mul, d1)
                u = torch.arange(mul)
                for woff, col, d3, sl in info:
                    for k in range(d3):
                        j = sl.start + u * d3 + k  # e3nn mid column of (u, k)
                        mid_index[j] = nat + u * dout + o0 + col + k
                        weight_index[nat + u * dout + o0 + col + k] = woff + u
                i0, o0 = i0 + d1, o0 + D
            self.register_buffer(f"_group_coupling{g}", cg.reshape(sh_dim, din * dout),
                                 persistent=False)
            in_index.append(cols.reshape(-1))
            self._groups.append((mul, din, dout, nat))
            nat += mul * dout
        for bi, *_ in self._blocks:
            delattr(self, f"_coupling{bi}")
        self.register_buffer("_in_index", torch.cat(in_index) if in_index
                             else torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("_mid_index", mid_index, persistent=False)
        self.register_buffer("_weight_index", weight_index, persistent=False)

    def natural_messages(
        self,
        x: torch.Tensor,
        edge_attr: torch.Tensor,
        weight: torch.Tensor,
        src: torch.Tensor | None = None,
        weight_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Messages ``(E, irreps_mid.dim)`` in the grouped layout (see :meth:`to_mid`).

        ``x`` is ``(E, irreps_in.dim)``, or ``(N, irreps_in.dim)`` node features with ``src
        (E,)`` the sending node of each edge; ``weight`` is ``(E, weight_numel)``, or ``(L,
        weight_numel)`` with ``weight_index (E,)`` its row of each edge. Permuting columns and
        spreading weights happen before the rows are expanded to edges (cheap when N, L << E).
        """
        xr = x.index_select(1, self._in_index)
        if src is not None:
            xr = xr.index_select(0, src)
        w = weight.index_select(1, self._weight_index)
        if weight_index is not None:
            w = w.index_select(0, weight_index)
        E = xr.shape[0]
        outs, i0 = [], 0
        for g, (mul, din, dout, _) in enumerate(self._groups):
            t = edge_attr @ getattr(self, f"_group_coupling{g}").to(edge_attr.dtype)
            xg = xr[:, i0 : i0 + mul * din].view(E, mul, din)
            if din == 1:  # scalars in: an outer product, no batched matmul of depth 1
                yg = xg * t.view(E, 1, dout)
            else:
                yg = torch.bmm(xg, t.view(E, din, dout))
            outs.append(yg.view(E, mul * dout))
            i0 += mul * din
        y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        return y * w

    def to_mid(self, y: torch.Tensor) -> torch.Tensor:
        """Columns of :meth:`natural_messages` (or of their sums) in e3nn's mid order."""
        return y.index_select(1, self._mid_index)

    def forward(
        self, x: torch.Tensor, edge_attr: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Messages ``(E, irreps_mid.dim)``.

        ``x (E, irreps_in.dim)``, ``edge_attr (E, irreps_sh.dim)``, ``weight (E, weight_numel)``.
        """
        return self.to_mid(self.natural_messages(x, edge_attr, weight))


class Convolution(torch.nn.Module):
    """One point convolution of ``gate_points_2101`` (self-connection + message passing).

    Parameters
    ----------
    irreps_in, irreps_out : e3nn.o3.Irreps
        Node features in and out.
    attr_dim : int
        Scalar node attributes (embedded species).
    irreps_sh : e3nn.o3.Irreps
        Edge attributes.
    num_basis, radial_layers, radial_neurons : int
        Radial MLP ``num_basis -> radial_neurons (× radial_layers) -> path weights``, SiLU.
    num_neighbors : float
        The neighbour sum is divided by ``√num_neighbors``.
    """

    def __init__(
        self,
        irreps_in,
        irreps_out,
        attr_dim,
        irreps_sh,
        num_basis,
        radial_layers,
        radial_neurons,
        num_neighbors,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.num_neighbors = float(num_neighbors)
        self.sc = ScalarAttrTensorProduct(self.irreps_in, attr_dim, self.irreps_out)
        self.lin1 = ScalarAttrTensorProduct(self.irreps_in, attr_dim, self.irreps_in)
        self.tp = EdgeTensorProduct(self.irreps_in, irreps_sh, self.irreps_out)
        self.fc = RadialMLP(
            [num_basis] + radial_layers * [radial_neurons] + [self.tp.weight_numel],
            torch.nn.functional.silu,
        )
        self.lin2 = ScalarAttrTensorProduct(self.tp.irreps_mid, attr_dim, self.irreps_out)
        c_s, c_x = math.sin(math.pi / 8), math.cos(math.pi / 8)
        m = self.sc.output_mask
        self.c_s = c_s
        self.register_buffer("_c_x", (1 - m) + c_x * m, persistent=False)

    def forward(
        self,
        x,
        z_unique,
        groups,
        edge_src,
        edge_dst,
        edge_attr,
        edge_basis,
        edge_basis_index=None,
        tables=None,
    ) -> torch.Tensor:
        """``x (C*P, irreps_in.dim)`` -> ``(C*P, irreps_out.dim)``, nodes packed by ``groups``.

        Edges ``src -> dst`` ``(E,)`` index packed slots; ``edge_attr (E, sh)``;
        ``edge_basis (L, num_basis)`` with ``edge_basis_index (E,)`` (or ``L = E`` and None);
        attributes as in :meth:`ScalarAttrTensorProduct.forward`; ``tables`` optionally maps
        each attribute product (module) to its precomputed tables.
        """
        tables = tables or {}
        s = self.sc(x, z_unique, groups, tables.get(self.sc))
        h = self.lin1(x, z_unique, groups, tables.get(self.lin1))
        w = self.fc(edge_basis) * self.num_neighbors**-0.5  # (L rows: cheap)
        msg = self.tp.natural_messages(h, edge_attr, w, edge_src, edge_basis_index)
        agg = self.tp.to_mid(msg.new_zeros(x.shape[0], msg.shape[1]).index_add_(0, edge_dst, msg))
        y = self.lin2(agg, z_unique, groups, tables.get(self.lin2))
        return self.c_s * s + self._c_x * y


class _Gate(torch.nn.Module):
    """e3nn ``Gate``: activated scalars, and gated irreps × activated gates (normalised acts)."""

    def __init__(self, irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated) -> None:
        super().__init__()
        self.irreps_scalars = o3.Irreps(irreps_scalars)
        self.irreps_gates = o3.Irreps(irreps_gates)
        self.irreps_gated = o3.Irreps(irreps_gated)
        # simplified like e3nn's Gate: this fixes the weight layout of the convolution before it
        self.irreps_in = (self.irreps_scalars + self.irreps_gates + self.irreps_gated).simplify()
        self.irreps_out = self.irreps_scalars + self.irreps_gated
        self.acts_s = [_normalized(a) for a in act_scalars]
        self.acts_g = [_normalized(a) for a in act_gates]
        self.ns, self.ng = self.irreps_scalars.dim, self.irreps_gates.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, irreps_in.dim)`` -> ``(N, irreps_out.dim)``."""
        sizes = [mul * ir.dim for mul, ir in self.irreps_scalars + self.irreps_gates]
        sizes += [mul * ir.dim for mul, ir in self.irreps_gated]
        pieces = list(torch.split(x, sizes, dim=1))  # views; the backward is one op
        ns, ng = len(self.irreps_scalars), len(self.irreps_gates)
        outs = [act(p) for p, act in zip(pieces[:ns], self.acts_s, strict=True)]
        gates = [act(p) for p, act in zip(pieces[ns : ns + ng], self.acts_g, strict=True)]
        for (mul, ir), g, v in zip(self.irreps_gated, gates, pieces[ns + ng :], strict=True):
            outs.append((v.view(-1, mul, ir.dim) * g.unsqueeze(2)).reshape(-1, mul * ir.dim))
        return torch.cat(outs, dim=1)


class GatedConvolution(torch.nn.Module):
    """A :class:`Convolution` followed by its gate (``irreps_in`` -> scalars + gated irreps)."""

    def __init__(self, conv: Convolution, gate: _Gate) -> None:
        super().__init__()
        self.conv = conv
        self.gate = gate
        self.irreps_in = conv.irreps_in
        self.irreps_out = gate.irreps_out

    def forward(self, *args, **kwargs):
        """Same arguments as :meth:`Convolution.forward`; returns ``(C*P, irreps_out.dim)``."""
        return self.gate(self.conv(*args, **kwargs))


class BeteNet(torch.nn.Module):
    """BETE-NET: crystal graph -> α²F on the 51-bin grid.

    Parameters
    ----------
    config : NetworkConfig, optional
        Hyper-parameters (paper CSO defaults).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from betenet_model import build_graph, make_sample, collate
    >>> g = build_graph(np.eye(3) * 3.0, [[0, 0, 0]], [13])
    >>> net = BeteNet(NetworkConfig(mul=4, embed_dim=8, radial_neurons=8))
    >>> net(collate([make_sample(g)])).shape
    torch.Size([1, 51])
    """

    anchor: torch.Tensor   # buffer of the ``anchored`` and ``dos`` heads only
    tc_anchor: torch.Tensor  # buffer of the Tc head only

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else NetworkConfig()
        self.embed = torch.nn.Linear(cfg.input_dim, cfg.embed_dim)
        self.irreps_sh = o3.Irreps.spherical_harmonics(cfg.lmax)
        hidden = o3.Irreps([(cfg.mul, (deg, p)) for deg in range(cfg.lmax + 1) for p in (-1, 1)])
        act = {1: torch.nn.functional.silu, -1: torch.tanh}
        act_gate = {1: torch.sigmoid, -1: torch.tanh}
        irreps = o3.Irreps(f"{cfg.embed_dim}x0e")
        conv_args = (
            cfg.embed_dim,
            self.irreps_sh,
            cfg.num_basis,
            cfg.radial_layers,
            cfg.radial_neurons,
            cfg.num_neighbors,
        )
        self.layers = torch.nn.ModuleList()
        for _ in range(cfg.layers):
            sh = self.irreps_sh
            scalars = o3.Irreps(
                [(m, ir) for m, ir in hidden if ir.l == 0 and _tp_path_exists(irreps, sh, ir)]
            ).simplify()
            gated = o3.Irreps(
                [(m, ir) for m, ir in hidden if ir.l > 0 and _tp_path_exists(irreps, sh, ir)]
            )
            gate_ir = "0e" if _tp_path_exists(irreps, sh, "0e") else "0o"
            gates = o3.Irreps([(m, gate_ir) for m, _ in gated])
            gate = _Gate(
                scalars,
                [act[ir.p] for _, ir in scalars],
                gates,
                [act_gate[ir.p] for _, ir in gates],
                gated,
            )
            conv = Convolution(irreps, gate.irreps_in, *conv_args)
            self.layers.append(GatedConvolution(conv, gate))
            irreps = gate.irreps_out
        self.layers.append(Convolution(irreps, o3.Irreps(f"{cfg.outputs}x0e"), *conv_args))
        if cfg.head in ("anchored", "dos"):
            self.register_buffer("anchor", torch.zeros(cfg.out_dim))
        if cfg.head == "dos":
            from .targets import model_grid

            grid = torch.as_tensor(model_grid(cfg.out_dim), dtype=torch.float32)
            self.register_buffer("basis", coupling_basis(grid, cfg.coupling_basis),
                                 persistent=False)
        if cfg.tc_head:
            self.register_buffer("tc_anchor", torch.zeros(()))
        #: reuse per-species tables across no-grad forwards while the weights are unchanged
        self.cache_species_tables = True
        self._species_cache: dict = {}

    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters (2 456 312 for the paper's CSO model)."""
        return sum(p.numel() for p in self.parameters())

    def edge_embedding(self, edge_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(E, 3)`` -> edge attributes ``(E, (lmax+1)**2)`` and basis ``(E, num_basis)``."""
        c = self.config
        return edge_embedding(edge_vec, c.cutoff, c.lmax, c.num_basis)

    def _attribute_rows(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        if getattr(batch, "attr_unique", None) is not None and batch.attr_index is not None:
            return batch.attr_unique, batch.attr_index
        attr_unique, index = torch.unique(batch.node_attrs, dim=0, return_inverse=True)
        return attr_unique, index.reshape(-1)

    def _cached_tables(self, attr_unique: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Row of each distinct attribute in the cached table ``(K,)`` and the table.

        The table holds, per cached species row, the flattened :meth:`ScalarAttrTensorProduct.
        tables` of every attribute product side by side (``(rows, Σ U·W)``), so that one gather
        per forward serves all of them (:meth:`_split_tables`).
        """
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters())
        cache = self._species_cache
        if cache.get("key") != key:
            cache.clear()
            cache.update(key=key, rows={}, flat=None)
        rows = cache["rows"]
        host = attr_unique.detach().cpu().numpy()
        new = [k for k in range(host.shape[0]) if host[k].tobytes() not in rows]
        if new:
            z_new = torch.relu(
                self.embed(attr_unique[torch.tensor(new, device=attr_unique.device)])
            )
            fresh = torch.cat(
                [t.reshape(len(new), -1) for m in self._attr_products() for t in m.tables(z_new)],
                dim=1,
            )
            old = cache["flat"]
            cache["flat"] = fresh if old is None else torch.cat([old, fresh])
            for k in new:
                rows[host[k].tobytes()] = len(rows)
        row_map = torch.tensor([rows[h.tobytes()] for h in host], device=attr_unique.device)
        return row_map, cache["flat"]

    def _attr_products(self) -> list[ScalarAttrTensorProduct]:
        return [m for m in self.modules() if isinstance(m, ScalarAttrTensorProduct)]

    def _split_tables(self, flat: torch.Tensor) -> dict:
        """Per-product lists of ``(C, U, W)`` views of a gathered flat table ``(C, Σ U·W)``."""
        out, off = {}, 0
        for m in self._attr_products():
            views = []
            for _, _, U, Wt, _, _ in m._paths:
                views.append(flat[:, off : off + U * Wt].view(flat.shape[0], U, Wt))
                off += U * Wt
            out[m] = views
        return out

    def node_embeddings(self, batch) -> tuple[torch.Tensor, torch.Tensor, SpeciesGroups]:
        """Packed embedded features, distinct embedded attributes, and the packing.

        Returns ``x (C*P, embed)``, ``z_unique (K, embed)`` and the :class:`SpeciesGroups`
        packing of the nodes by attribute row.
        """
        attr_unique, index = self._attribute_rows(batch)
        groups = SpeciesGroups(index, attr_unique.shape[0])
        x = groups.pack(torch.relu(self.embed(batch.node_features)))
        z_unique = torch.relu(self.embed(attr_unique))
        return x.view(groups.chunks * groups.size, -1), z_unique, groups

    def set_anchor(self, spectrum: torch.Tensor) -> None:
        """Fix ``A(ω)``, shape ``(out_dim,)``.

        The ``anchored`` head's spectrum (e.g. the mean training α²F) or the ``dos`` head's
        coupling function (α²F / F fitted on training rows).
        """
        if self.config.head not in ("anchored", "dos"):
            raise ValueError("set_anchor needs head 'anchored' or 'dos', this network has "
                             f"{self.config.head!r}")
        spectrum = torch.as_tensor(spectrum, dtype=self.anchor.dtype, device=self.anchor.device)
        if spectrum.shape != self.anchor.shape or not bool(torch.isfinite(spectrum).all()):
            raise ValueError(f"anchor must be a finite ({self.config.out_dim},) spectrum")
        self.anchor.copy_(spectrum.clamp(min=0))

    def set_tc_anchor(self, log_tc: float) -> None:
        """Fix the Tc head's offset (e.g. the mean training ln(1 + Tc/K))."""
        if not self.config.tc_head:
            raise ValueError("set_tc_anchor needs a network with tc_head")
        self.tc_anchor.fill_(float(log_tc))

    def forward_atoms(self, batch) -> torch.Tensor:
        """Per-atom outputs, ``(N, out_dim)``: after the ReLU (``relu-mean``), raw (``anchored``).

        Without autograd (``torch.no_grad``) and with ``cache_species_tables`` the per-species
        tables of the attribute products are kept between calls until a weight changes.
        """
        tables = None
        if self.cache_species_tables and not torch.is_grad_enabled():
            attr_unique, index = self._attribute_rows(batch)
            row_map, flat = self._cached_tables(attr_unique)
            groups = SpeciesGroups(index, attr_unique.shape[0], row_map)
            if groups.chunk_row is not None:
                flat = flat.index_select(0, groups.chunk_row)
            tables = self._split_tables(flat)
            x = groups.pack(torch.relu(self.embed(batch.node_features)))
            x, z_unique = x.view(groups.chunks * groups.size, -1), None
        else:
            self._species_cache.clear()
            x, z_unique, groups = self.node_embeddings(batch)
        src = groups.slot.index_select(0, batch.edge_src)
        dst = groups.slot.index_select(0, batch.edge_dst)
        if batch.edge_attr is not None and batch.edge_basis is not None:
            edge_attr, edge_basis = batch.edge_attr, batch.edge_basis
            basis_index = batch.edge_basis_index
        else:
            edge_attr, edge_basis = self.edge_embedding(batch.edge_vec)
            basis_index = None
        for layer in self.layers:
            x = layer(x, z_unique, groups, src, dst, edge_attr, edge_basis, basis_index, tables)
        x = x.index_select(0, groups.slot)
        if self.config.head != "relu-mean":
            return x
        if not self.config.tc_head:
            return torch.relu(x)
        return torch.cat([torch.relu(x[:, :-1]), x[:, -1:]], dim=1)

    def forward(self, batch) -> torch.Tensor:
        """Predict α²F for every crystal of a batch.

        Parameters
        ----------
        batch : GraphBatch
            Collated crystals (:func:`betenet_model.collate`), same dtype/device as the network.

        Returns
        -------
        torch.Tensor
            ``(n_graphs, out_dim)``: the mean over each crystal's atoms of the per-atom ReLU output
            (``relu-mean``), the anchor times the bounded factor of that mean (``anchored``), or
            the bounded coupling function times the batch's phonon DOS (``dos``).
        """
        return self.predict(batch)[0]

    def predict(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The spectra ``(n_graphs, out_dim)`` and the direct ln(1 + Tc/K).

        The latter has shape ``(n_graphs,)`` with ``tc_head``, else it is None.
        """
        per_atom = self.forward_atoms(batch)
        n = int(batch.n_graphs)
        total = per_atom.new_zeros(n, per_atom.shape[1]).index_add_(0, batch.node_graph, per_atom)
        counts = torch.bincount(batch.node_graph, minlength=n).clamp(min=1).to(per_atom.dtype)
        mean = total / counts.unsqueeze(1)
        log_tc = None
        if self.config.tc_head:
            bound = math.log1p(TC_HEAD_MAX_K)
            log_tc = bound * torch.tanh((mean[:, -1] + self.tc_anchor) / bound)
            mean = mean[:, :-1]
        b = ANCHOR_LOG_BOUND
        if self.config.head == "relu-mean":
            return mean, log_tc
        if self.config.head == "anchored":
            return self.anchor * torch.exp(b * torch.tanh(mean / b)), log_tc
        dos = getattr(batch, "phonon_dos", None)
        if dos is None:
            raise ValueError("the dos head needs the phonon DOS of every crystal "
                             "(GraphBatch.phonon_dos)")
        shape = mean @ self.basis.to(mean.dtype)
        return self.anchor * torch.exp(b * torch.tanh(shape / b)) * dos, log_tc


def load_reference_state_dict(net: BeteNet, state_dict: dict) -> None:
    """Load weights of an e3nn ``gate_points_2101`` network with the same hyper-parameters.

    Accepts the state dict of ``shared/bench/reference_gate_points.py``'s ``ReferenceNet``
    (keys ``embed.*``, ``layers.{k}.first.{sc,lin1,fc,lin2}.*`` and ``layers.{last}.*``); e3nn
    buffers (``output_mask``, tabulated Wigner symbols) are ignored.

    Raises
    ------
    ValueError
        A parameter is missing or has another shape.
    """
    mapped = {}
    last = len(net.layers) - 1
    for key, value in state_dict.items():
        if (
            "output_mask" in key
            or "_compiled" in key
            or key.endswith("tp.weight")
            or ".second." in key
        ):
            continue
        parts = key.split(".")
        if parts[0] == "layers":
            k = int(parts[1])
            rest = parts[3:] if parts[2] == "first" else parts[2:]
            new = ["layers", str(k)] + (["conv"] if k != last else []) + rest
            mapped[".".join(new)] = value
        else:
            mapped[key] = value
    tps = {
        name: mod for name, mod in net.named_modules() if isinstance(mod, ScalarAttrTensorProduct)
    }
    flats = {}
    for name, mod in tps.items():
        flat = mapped.pop(f"{name}.weight", None)
        if flat is None or tuple(flat.shape) != (mod.weight_numel,):
            raise ValueError(
                f"The reference weight {name}.weight is missing or has another shape: "
                "not the same architecture."
            )
        flats[name] = flat
    own = {k: v for k, v in net.named_parameters() if k.rsplit(".", 1)[0] not in tps}
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise ValueError(f"The reference weights lack {missing}: not the same architecture.")
    for key, value in mapped.items():
        if key not in own:
            raise ValueError(f"Unexpected reference weight {key!r}: not the same architecture.")
        if tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(
                f"Weight {key!r} has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)}: not the same architecture."
            )
    with torch.no_grad():
        for key, value in mapped.items():
            own[key].copy_(value)
    for name, flat in flats.items():
        tps[name].load_e3nn_weight(flat)

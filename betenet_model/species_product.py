"""Node-attribute tensor products evaluated per species (> 95 % of the parameters).

The products ``sc``, ``lin1`` and ``lin2`` of every convolution are bilinear in the embedded
node attributes ``z``, which take one value per species: they run as ``x[n] @ M[species(n)]``
with ``M = Σ_v z_v W[:, v, :]`` built for the distinct attribute rows only
(:class:`ScalarAttrTensorProduct`), nodes packed by species (:class:`SpeciesGroups`).
"""

from __future__ import annotations

import torch
from e3nn import o3

__all__ = ["ScalarAttrTensorProduct", "SpeciesGroups"]


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

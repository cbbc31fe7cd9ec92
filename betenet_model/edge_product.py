"""The edge tensor product of a convolution (node features ⊗ edge harmonics, per-edge weights)."""

from __future__ import annotations

import math

import torch
from e3nn import o3

__all__ = ["EdgeTensorProduct"]


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

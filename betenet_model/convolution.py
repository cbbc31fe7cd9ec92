"""The point convolution of ``gate_points_2101``, its gate, radial MLP and the layer stack."""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.math import normalize2mom

from .edge_product import EdgeTensorProduct
from .species_product import ScalarAttrTensorProduct

__all__ = ["Convolution", "GatedConvolution", "RadialMLP", "convolution_layers"]


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


def convolution_layers(cfg, irreps_sh) -> torch.nn.ModuleList:
    """``cfg.layers`` gated convolutions from the embedding, then one to ``cfg.outputs × 0e``.

    ``cfg`` is a :class:`betenet_model.network_config.NetworkConfig`; hidden irreps
    ``mul × (0e + 0o + 1e + 1o ...)`` up to ``lmax``, pruned to the paths the edge harmonics
    reach; SiLU/tanh on scalars, sigmoid/tanh gates (e3nn's ``gate_points_2101``).
    """
    hidden = o3.Irreps([(cfg.mul, (deg, p)) for deg in range(cfg.lmax + 1) for p in (-1, 1)])
    act = {1: torch.nn.functional.silu, -1: torch.tanh}
    act_gate = {1: torch.sigmoid, -1: torch.tanh}
    irreps = o3.Irreps(f"{cfg.embed_dim}x0e")
    conv_args = (
        cfg.embed_dim,
        irreps_sh,
        cfg.num_basis,
        cfg.radial_layers,
        cfg.radial_neurons,
        cfg.num_neighbors,
    )
    layers = torch.nn.ModuleList()
    for _ in range(cfg.layers):
        sh = irreps_sh
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
        layers.append(GatedConvolution(conv, gate))
        irreps = gate.irreps_out
    layers.append(Convolution(irreps, o3.Irreps(f"{cfg.outputs}x0e"), *conv_args))
    return layers

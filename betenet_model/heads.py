"""Output heads: from the atom mean of the last convolution to a crystal's α²F (and Tc).

``relu-mean`` (the paper) is the mean of the per-atom ReLU outputs; ``anchored`` multiplies a
spectrum fixed before training (``A(ω)``, the mean training α²F) by a bounded per-bin factor
``exp(b·tanh(c/b))``, ``b = ln 8``; ``dos`` multiplies the crystal's phonon DOS ``F(ω)`` by a
bounded coupling function ``A(ω)·exp(b·tanh(Σ_k c_k φ_k(ω)/b))`` (``φ_k``:
:func:`coupling_basis`). The optional Tc head is one more channel read as
``ln(1 + Tc/K) = B·tanh((x + x₀)/B)``, ``B = ln(1 + TC_HEAD_MAX_K)``. The module docstring of
:mod:`betenet_model.network` says why each head is built so.
"""

from __future__ import annotations

import math

import torch

from .network_config import NetworkConfig

__all__ = ["ANCHOR_LOG_BOUND", "TC_HEAD_MAX_K", "atom_outputs", "coupling_basis",
           "crystal_outputs"]

ANCHOR_LOG_BOUND = math.log(8.0)
TC_HEAD_MAX_K = 150.0
"""The Tc head's output stays below this (above every DFT Tc the models are trained on)."""


def coupling_basis(grid_meV: torch.Tensor, n: int) -> torch.Tensor:
    """``(n, G)`` Gaussians evenly spaced in √ω from 0 to the top of the grid (width = spacing).

    √ω spacing puts more of them at low frequency (10 on a 250 meV grid: centres 0, 3, 12,
    28, 49, 77, 111, 151, 198, 250 meV), where α²F/ω sets λ and ω_log.
    """
    u = torch.sqrt(grid_meV.clamp(min=0))
    centres = torch.linspace(0.0, float(u[-1]), n, dtype=u.dtype)
    width = float(u[-1]) / max(n - 1, 1)
    return torch.exp(-0.5 * ((u[None, :] - centres[:, None]) / width) ** 2)


def atom_outputs(config: NetworkConfig, x: torch.Tensor) -> torch.Tensor:
    """Per-atom outputs ``(N, outputs)``: ReLU'd spectrum bins for ``relu-mean``, else raw."""
    if config.head != "relu-mean":
        return x
    if not config.tc_head:
        return torch.relu(x)
    return torch.cat([torch.relu(x[:, :-1]), x[:, -1:]], dim=1)


def crystal_outputs(config: NetworkConfig, mean: torch.Tensor, anchor: torch.Tensor | None,
                    basis: torch.Tensor | None, tc_anchor: torch.Tensor | None,
                    phonon_dos: torch.Tensor | None,
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The spectra ``(n_graphs, out_dim)`` and ln(1 + Tc/K) (None without a Tc head).

    ``mean`` is the atom mean of :func:`atom_outputs` per crystal; ``anchor`` the ``A(ω)`` of
    the ``anchored`` and ``dos`` heads, ``basis`` the ``dos`` head's :func:`coupling_basis`,
    ``tc_anchor`` the Tc head's offset and ``phonon_dos`` the batch's ``(n_graphs, out_dim)``
    phonon DOS (``dos`` head only).
    """
    log_tc = None
    if config.tc_head:
        if tc_anchor is None:
            raise ValueError("a network with tc_head needs its tc_anchor buffer")
        bound = math.log1p(TC_HEAD_MAX_K)
        log_tc = bound * torch.tanh((mean[:, -1] + tc_anchor) / bound)
        mean = mean[:, :-1]
    b = ANCHOR_LOG_BOUND
    if config.head == "relu-mean":
        return mean, log_tc
    if anchor is None:
        raise ValueError(f"the {config.head} head needs its anchor buffer")
    if config.head == "anchored":
        return anchor * torch.exp(b * torch.tanh(mean / b)), log_tc
    if phonon_dos is None:
        raise ValueError("the dos head needs the phonon DOS of every crystal "
                         "(GraphBatch.phonon_dos)")
    if basis is None:
        raise ValueError("the dos head needs its coupling basis buffer")
    shape = mean @ basis.to(mean.dtype)
    return anchor * torch.exp(b * torch.tanh(shape / b)) * phonon_dos, log_tc

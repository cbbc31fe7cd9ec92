"""Edge inputs of the network: smooth cutoff times spherical harmonics, Gaussian radial basis.

Constant during training, so they are computed once per data set
(:func:`betenet_model.make_sample`) or by the network when a batch lacks them.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace

__all__ = ["edge_embedding", "smooth_cutoff"]


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

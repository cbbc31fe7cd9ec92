"""Shared helpers of the model-core tests (real bete-net cells, small networks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from betenet_model import GRID_MEV, BeteNet, NetworkConfig, build_graph, collate, make_sample

STRUCTURES = Path(__file__).resolve().parents[3] / "shared" / "structures" / "bete-net"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "bench" / "reference_gate_points.py"

SMALL = dict(mul=4, embed_dim=8, radial_neurons=16)


def read_cell(name: str):
    """(lattice, positions, numbers) of a bete-net CIF, or skip when the data are absent."""
    path = STRUCTURES / name
    if not path.exists():
        pytest.skip(f"bete-net structures not found at {STRUCTURES}")
    from ase.io import read

    atoms = read(path)
    return atoms.cell.array.copy(), atoms.positions.copy(), atoms.numbers.copy()


def small_net(dtype=torch.float64, seed=0, **overrides) -> BeteNet:
    torch.manual_seed(seed)
    cfg = NetworkConfig(**{**SMALL, **overrides})
    return BeteNet(cfg).to(dtype)


def predict(net: BeteNet, cells, dtype=torch.float64, **collate_kw) -> torch.Tensor:
    samples = [make_sample(build_graph(*c), config=net.config, dtype=dtype) for c in cells]
    with torch.no_grad():
        return net(collate(samples, **collate_kw))


def lam(a2f: torch.Tensor) -> np.ndarray:
    """λ = 2 ∫ α²F/ω dω on the model grid (trapezoid), per row."""
    y = a2f.detach().double().numpy()
    return 2.0 * np.trapezoid(y / GRID_MEV, GRID_MEV, axis=-1)

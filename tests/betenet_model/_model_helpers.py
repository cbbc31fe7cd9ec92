"""Shared helpers of the model-core tests (real bete-net cells, small networks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from betenet_model import GRID_MEV, BeteNet, NetworkConfig, build_graph, collate, make_sample
from betenet_model.dataset import CrystalSample
from betenet_model.ensemble import EnsembleConfig
from betenet_model.training import TrainConfig

STRUCTURES = Path(__file__).resolve().parents[3] / "shared" / "structures" / "bete-net"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "bench" / "reference_gate_points.py"

SMALL = dict(mul=4, embed_dim=8, radial_neurons=16)
TINY = dict(mul=4, embed_dim=8, radial_neurons=8)


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


def toy_samples(n=5):
    """Five small crystals (1-2 atoms) with Gaussian targets on the grid."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        a = 3.0 + 0.2 * i
        z = [13, 29, 47, 79, 82][i % 5]
        target = np.exp(-((GRID_MEV - 10 - 3 * i) / 4.0) ** 2) * 0.3
        if i % 2:
            lattice = np.eye(3) * a
            pos, numbers = [[0, 0, 0], [a / 2, a / 2, a / 2]], [z, 13]
        else:
            lattice = (np.ones((3, 3)) - np.eye(3)) * a / 2
            pos, numbers = [[0, 0, 0]], [z]
        out.append(CrystalSample(str(i), lattice, pos, numbers,
                                 target=target + 0.01 * rng.random(51)))
    return out


def tiny_config(members=2, max_epochs=12, **train):
    """A tiny CSO ensemble configuration that trains in seconds."""
    return EnsembleConfig(network=NetworkConfig.for_variant("CSO", **TINY),
                          training=TrainConfig(max_epochs=max_epochs, patience=3, peak_window=3,
                                               patience_stage3=4, checkpoint_every=5, **train),
                          members=members, seed=7)

import numpy as np
import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from betenet_model import build_graph, collate, make_sample
from betenet_model.species_product import SpeciesGroups

from ._model_helpers import lam, predict, read_cell, small_net

DTYPES = [(torch.float64, 1e-9), (torch.float32, 2e-4)]
NAMES = ["10.cif", "250.cif", "500.cif"]


def _check_same(y, y0, tol):
    scale = float(y0.abs().max())
    assert scale > 0, "trivial all-zero prediction: the check would prove nothing"
    assert float((y - y0).abs().max()) <= tol * scale
    np.testing.assert_allclose(lam(y), lam(y0), rtol=10 * tol, atol=tol * np.abs(lam(y0)).max())


@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_rotation_inversion_translation(dtype, tol):
    net = small_net(dtype)
    cells = [read_cell(n) for n in NAMES]
    y0 = predict(net, cells, dtype=dtype)
    rot = o3.angles_to_matrix(*torch.tensor([0.7, 1.9, -2.4], dtype=torch.float64)).numpy()
    for R in (rot, -rot):  # proper rotation, and rotation times inversion
        moved = [(lat @ R.T, pos @ R.T + np.array([0.3, -1.7, 2.2]), z) for lat, pos, z in cells]
        _check_same(predict(net, moved, dtype=dtype), y0, tol)


@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_atom_permutation(dtype, tol):
    net = small_net(dtype)
    cells = [read_cell(n) for n in NAMES]
    y0 = predict(net, cells, dtype=dtype)
    rng = np.random.default_rng(0)
    perm = []
    for lat, pos, z in cells:
        p = rng.permutation(len(z))
        perm.append((lat, pos[p], z[p]))
    _check_same(predict(net, perm, dtype=dtype), y0, tol)
    # the order of crystals in a batch does not matter either
    _check_same(predict(net, cells[::-1], dtype=dtype).flip(0), y0, tol)


@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_supercell_gives_the_same_mean_over_atoms(dtype, tol):
    net = small_net(dtype)
    cells = [read_cell(n) for n in NAMES]
    y0 = predict(net, cells, dtype=dtype)
    supers = []
    for lat, pos, z in cells:
        big = lat.copy()
        big[0] *= 2
        supers.append((big, np.concatenate([pos, pos + lat[0]]), np.concatenate([z, z])))
    _check_same(predict(net, supers, dtype=dtype), y0, tol)


@pytest.mark.parametrize("name", ["0.cif", "15.cif"])  # Cs, Ba: no neighbour inside 4 Å
def test_isolated_atom_through_its_self_edge(name):
    net = small_net(torch.float64)
    lat, pos, z = read_cell(name)
    y = predict(net, [(lat, pos, z)])
    assert torch.isfinite(y).all() and y.abs().max() > 0
    # the same isolated atom in any other cell without neighbours gives the same spectrum
    box = predict(net, [(np.eye(3) * 9.0, np.zeros((1, 3)), z)])
    torch.testing.assert_close(box, y)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hidden_features_equivariant(dtype):
    net = small_net(dtype)
    layer = net.layers[1]  # 4x0e+4x1o in, gated 0e/1o/1e out
    lat, pos, z = read_cell("250.cif")
    batch = collate([make_sample(build_graph(lat, pos, z), config=net.config, dtype=dtype)])
    index = torch.unique(batch.node_attrs, dim=0, return_inverse=True)[1].reshape(-1)
    k = int(index.max()) + 1
    groups = SpeciesGroups(index, k)
    z_unique = torch.randn(k, net.config.embed_dim, dtype=dtype)
    src, dst = groups.slot[batch.edge_src], groups.slot[batch.edge_dst]
    basis = batch.edge_basis[batch.edge_basis_index]

    def f(x, edge_attr):
        packed = groups.pack(x)
        return groups.unpack(layer(packed, z_unique, groups, src, dst, edge_attr, basis))

    x = layer.irreps_in.randn(len(z), -1, dtype=dtype)
    assert_equivariant(
        f,
        args_in=[x, batch.edge_attr],
        irreps_in=[layer.irreps_in, net.irreps_sh],
        irreps_out=[layer.irreps_out],
        tolerance=1e-3 if dtype == torch.float32 else 1e-9,
    )


def test_bad_inputs_raise_clear_errors():
    net = small_net()
    with pytest.raises(ValueError, match="Unknown element"):
        predict(net, [(np.eye(3) * 4, [[0, 0, 0]], [130])])
    with pytest.raises(ValueError, match="empty"):
        predict(net, [(np.eye(3) * 4, np.zeros((0, 3)), np.zeros(0, dtype=int))])
    with pytest.raises(ValueError, match="not finite"):
        predict(net, [(np.eye(3) * 4, [[0, np.nan, 0]], [6])])

import numpy as np
import pytest
import torch

from betenet_model import (
    ATOMIC_MASSES,
    atomic_masses,
    build_graph,
    collate,
    input_dim,
    make_sample,
    node_inputs,
)

from ._model_helpers import read_cell

CELLS = ["0.cif", "1.cif", "10.cif", "15.cif", "66.cif", "100.cif", "250.cif", "500.cif", "823.cif"]


@pytest.mark.parametrize("name", CELLS)
def test_edges_match_ase(name):
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    lat, pos, z = read_cell(name)
    g = build_graph(lat, pos, z)
    atoms = Atoms(numbers=z, positions=pos, cell=lat, pbc=True)
    i, j, S = neighbor_list("ijS", atoms, 4.0, self_interaction=True)
    order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
    assert g.num_edges == len(i)
    np.testing.assert_array_equal(g.edge_src, i[order])
    np.testing.assert_array_equal(g.edge_dst, j[order])
    np.testing.assert_array_equal(g.edge_shift, S[order])
    d = atoms.positions[j] - atoms.positions[i] + S @ atoms.cell.array
    np.testing.assert_allclose(g.edge_length, np.linalg.norm(d[order], axis=1), atol=1e-10)


def test_one_self_edge_per_atom_with_zero_vector():
    lat, pos, z = read_cell("250.cif")
    g = build_graph(lat, pos, z)
    is_self = (g.edge_src == g.edge_dst) & np.all(g.edge_shift == 0, axis=1)
    np.testing.assert_array_equal(np.sort(g.edge_src[is_self]), np.arange(len(z)))
    np.testing.assert_array_equal(g.edge_vec[is_self], 0.0)
    g0 = build_graph(lat, pos, z, self_edges=False)
    assert g0.num_edges == g.num_edges - len(z)


@pytest.mark.parametrize("name", ["0.cif", "15.cif", "66.cif"])  # Cs, Ba, Sr: no neighbour < 4 Å
def test_isolated_atom_keeps_its_self_edge(name):
    lat, pos, z = read_cell(name)
    g = build_graph(lat, pos, z)
    assert g.num_edges == 1 and g.edge_src[0] == g.edge_dst[0] == 0
    assert g.edge_length[0] == 0.0


def test_unwrapped_positions_give_the_same_vectors():
    lat, pos, z = read_cell("500.cif")
    shifted = pos + np.array([2, -1, 3]) @ lat
    shifted[0] -= lat[1]
    a, b = build_graph(lat, pos, z), build_graph(lat, shifted, z)
    key = lambda g: np.round(np.c_[g.edge_src, g.edge_dst, g.edge_vec], 8)  # noqa: E731
    ka, kb = key(a), key(b)
    np.testing.assert_allclose(ka[np.lexsort(ka.T[::-1])], kb[np.lexsort(kb.T[::-1])], atol=1e-7)


def test_tiny_cell_counts_images():
    # simple cubic a = 3 Å: self + 6 at 3 Å; 12 at 4.24 Å are outside the cutoff
    assert build_graph(np.eye(3) * 3.0, [[0.0, 0.0, 0.0]], [29]).num_edges == 7
    # a = 1.5 Å: 6 at 1.5, 12 at 2.12, 8 at 2.6, 6 at 3.0, 24 at 3.35, 24 at 3.67 -> 80 + self
    assert build_graph(np.eye(3) * 1.5, [[0.1, 0.2, 0.3]], [1]).num_edges == 81


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.eye(3), np.zeros((0, 3)), []), "empty"),
        ((np.eye(3) * 4, [[0.0, np.nan, 0.0]], [6]), "not finite"),
        ((np.eye(3) * 4, [[0.0, np.inf, 0.0]], [6]), "not finite"),
        ((np.eye(3) * 4, [[0.0, 0.0, 0.0]], [0]), "Unknown element"),
        ((np.eye(3) * 4, [[0.0, 0.0, 0.0]], [119]), "Unknown element"),
        ((np.eye(3)[:2], [[0.0, 0.0, 0.0]], [6]), r"\(3, 3\)"),
        ((np.zeros((3, 3)), [[0.0, 0.0, 0.0]], [6]), "linearly dependent"),
        ((np.eye(3) * 4, [[0.0, 0.0, 0.0]], [6, 6]), "one atomic number per site"),
        ((np.eye(3) * 4, [[0.0, 0.0, 0.0]], [6.5]), "integers"),
    ],
)
def test_bad_structures_raise_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        build_graph(*args)


def test_masses_agree_with_pymatgen():
    pmg = pytest.importorskip("pymatgen.core")
    ref = np.array([float(pmg.Element.from_Z(z).atomic_mass) for z in range(1, 119)])
    ours = ATOMIC_MASSES[1:]
    # IUPAC 2016 vs pymatgen's older table: standard weights agree to 1e-3, the rest use isotopes
    stable = np.array([z <= 83 and z not in (43, 61) for z in range(1, 119)])
    np.testing.assert_allclose(ours[stable], ref[stable], rtol=1e-3)
    np.testing.assert_allclose(ours, ref, rtol=1e-2)
    assert atomic_masses([1, 6])[1] == pytest.approx(12.011)


def test_node_inputs_variants():
    f, a = node_inputs([1, 8, 8])
    assert f.shape == a.shape == (3, 118) == (3, input_dim("CSO"))
    assert f[1, 7] == pytest.approx(15.999) and a[1, 7] == 1.0 and a.sum() == 3
    dos = np.random.default_rng(0).random((3, 51))
    f, a = node_inputs([1, 8, 8], dos, "FPD")
    assert f.shape == a.shape == (3, 169) == (3, input_dim("cpd"))
    np.testing.assert_array_equal(f[:, 118:], dos)
    np.testing.assert_array_equal(a[:, 118:], 0.0)
    with pytest.raises(ValueError, match="needs the site-projected"):
        node_inputs([1], None, "CPD")
    with pytest.raises(ValueError, match="shape"):
        node_inputs([1, 2], dos, "CPD")
    with pytest.raises(ValueError, match="takes no site DOS"):
        node_inputs([1, 8, 8], dos, "CSO")
    with pytest.raises(ValueError, match="unknown model variant"):
        node_inputs([1], None, "XYZ")


def test_collate_offsets_and_dedup():
    g1 = build_graph(np.eye(3) * 3.0, [[0, 0, 0]], [13])
    g2 = build_graph(np.eye(3) * 3.5, [[0, 0, 0], [1.75, 1.75, 1.75]], [11, 17])
    s1, s2 = make_sample(g1), make_sample(g2)
    b = collate([s1, s2, s1])
    assert b.n_graphs == 3 and b.node_graph.tolist() == [0, 1, 1, 2]
    n_e = g1.num_edges
    assert int(b.edge_src[n_e:].min()) == 1 and int(b.edge_src[-n_e:].min()) == 3
    full = collate([s1, s2, s1], length_resolution=None)
    torch.testing.assert_close(b.edge_basis[b.edge_basis_index], full.edge_basis)
    assert b.edge_basis.shape[0] < full.edge_basis.shape[0]
    with pytest.raises(ValueError, match="empty"):
        collate([])

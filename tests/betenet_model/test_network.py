import importlib.util

import numpy as np
import pytest
import torch
from e3nn import o3

from betenet_model import (
    BeteNet,
    EdgeTensorProduct,
    NetworkConfig,
    ScalarAttrTensorProduct,
    build_graph,
    collate,
    load_reference_state_dict,
    make_sample,
)
from betenet_model.species_product import SpeciesGroups

from ._model_helpers import REFERENCE, STRUCTURES, predict, read_cell, small_net

CELLS = ["1.cif", "10.cif", "100.cif", "250.cif", "500.cif", "0.cif"]


def test_paper_parameter_count():
    assert BeteNet().num_parameters == 2_456_312
    assert BeteNet(NetworkConfig.for_variant("FPD")).num_parameters == 2_456_312 + 51 * 64


def test_config_round_trip_and_errors():
    cfg = NetworkConfig(mul=8, num_neighbors=16.8)
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="Unknown NetworkConfig keys"):
        NetworkConfig.from_dict({"mull": 3})
    with pytest.raises(ValueError, match="positive"):
        NetworkConfig(cutoff=-1.0)


def _groups(index, k):
    return SpeciesGroups(torch.as_tensor(index), k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scalar_attr_product_equals_e3nn(dtype):
    torch.manual_seed(0)
    irreps_in, irreps_out = o3.Irreps("4x0e+3x1o+2x1e+2x0e"), o3.Irreps("3x0e+2x0e+4x1o+2x2e")
    slow = o3.FullyConnectedTensorProduct(irreps_in, "5x0e", irreps_out).to(dtype)
    fast = ScalarAttrTensorProduct(irreps_in, 5, irreps_out).to(dtype)
    fast.load_e3nn_weight(slow.weight.detach())
    torch.testing.assert_close(fast.e3nn_weight(), slow.weight.detach())
    index = [0, 2, 1, 2, 2, 2, 2, 0, 1]  # uneven groups: rows spill over several chunks
    z_unique = torch.randn(3, 5, dtype=dtype)
    x = torch.randn(len(index), irreps_in.dim, dtype=dtype)
    groups = _groups(index, 3)
    out = groups.unpack(fast(groups.pack(x), z_unique, groups))
    ref = slow(x, z_unique[index])
    torch.testing.assert_close(out, ref, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=1e-5)
    assert out[:, -10:].abs().max() == 0  # 2e has no path


def test_edge_product_equals_e3nn():
    torch.manual_seed(0)
    irreps_in, sh = o3.Irreps("3x0e+2x1o+2x1e"), o3.Irreps("0e+1o")
    target = o3.Irreps("2x0e+2x1o+2x1e")
    fast = EdgeTensorProduct(irreps_in, sh, target).double()
    mid, instr = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_e) in enumerate(sh):
            for ir_out in ir_in * ir_e:
                if ir_out in target:
                    instr.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid, p, _ = o3.Irreps(mid).sort()
    instr = [(a, b, p[c], m, t) for a, b, c, m, t in instr]
    slow = o3.TensorProduct(irreps_in, sh, mid, instr, internal_weights=False, shared_weights=False)
    assert fast.irreps_mid == mid and fast.weight_numel == slow.weight_numel
    x = torch.randn(7, irreps_in.dim, dtype=torch.float64)
    y = o3.spherical_harmonics(sh, torch.randn(7, 3, dtype=torch.float64), True)
    w = torch.randn(7, slow.weight_numel, dtype=torch.float64)
    torch.testing.assert_close(fast(x, y, w), slow.double()(x, y, w))


def _load_reference():
    if not REFERENCE.exists():
        pytest.skip(f"reference network not found at {REFERENCE} (shared bench material absent)")
    if not STRUCTURES.exists():
        pytest.skip(f"bete-net structures not found at {STRUCTURES}")
    spec = importlib.util.spec_from_file_location("reference_gate_points", REFERENCE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _with_f64(fn, *args, **kw):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return fn(*args, **kw)
    finally:
        torch.set_default_dtype(old)


def test_reference_weights_reproduce_reference_predictions():
    mod = _load_reference()
    files = [str(STRUCTURES / c) for c in CELLS]
    torch.manual_seed(1)
    ref = _with_f64(mod.ReferenceNet, em=16, mul=8)
    with torch.no_grad():  # larger output weights so that the final ReLU keeps most bins
        for p in ref.layers[-1].parameters():
            p.mul_(3.0)
    ref_batch = _with_f64(mod.batch, _with_f64(mod.graphs, files, 4.0))
    with torch.no_grad():
        y_ref = ref(*ref_batch)
    assert (y_ref > 0).sum() > 20
    # float64: ~1e-8 from merging radial-basis rows of edges equal within 1e-6 Å
    for dtype, tol in [(torch.float64, 1e-6), (torch.float32, 1e-4)]:
        net = BeteNet(NetworkConfig(embed_dim=16, mul=8)).to(dtype)
        load_reference_state_dict(net, ref.state_dict())
        y = predict(net, [read_cell(c) for c in CELLS], dtype=dtype)
        scale = y_ref.abs().max()
        assert float((y.double() - y_ref).abs().max() / scale) < tol
    with pytest.raises(ValueError, match="same architecture"):
        load_reference_state_dict(small_net(), ref.state_dict())


def test_full_size_reference_parameters_load():
    mod = _load_reference()
    ref = _with_f64(mod.ReferenceNet)
    net = BeteNet().double()
    load_reference_state_dict(net, ref.state_dict())
    assert net.num_parameters == sum(p.numel() for p in ref.parameters())


def test_float32_matches_float64_and_cached_edges_match_computed():
    net64 = small_net(torch.float64)
    net32 = small_net(torch.float32)
    net32.load_state_dict(net64.state_dict())
    cells = [read_cell(c) for c in CELLS]
    y64 = predict(net64, cells)
    y32 = predict(net32, cells, dtype=torch.float32)
    assert y64.abs().max() > 0
    torch.testing.assert_close(y32.double(), y64, rtol=1e-4, atol=1e-5 * float(y64.abs().max()))
    batch = collate([make_sample(build_graph(*c), config=net64.config) for c in cells])
    batch.edge_attr = batch.edge_basis = batch.edge_basis_index = None
    with torch.no_grad():
        torch.testing.assert_close(net64(batch), y64)
    exact = predict(net64, cells, length_resolution=None)
    torch.testing.assert_close(exact, y64, rtol=1e-6, atol=1e-9)


def test_full_batch_many_species_and_gradients():
    net = small_net(torch.float32)
    rng = np.random.default_rng(0)
    cells = []
    for _ in range(12):  # random cells: many species, uneven groups
        n = int(rng.integers(1, 6))
        cells.append(
            (
                np.eye(3) * 3.5 + rng.normal(0, 0.2, (3, 3)),
                rng.random((n, 3)) * 3.5,
                rng.choice([1, 8, 8, 8, 26, 79], n),
            )
        )
    batch = collate([make_sample(build_graph(*c), dtype=torch.float32) for c in cells])
    out = net(batch)
    assert out.shape == (12, 51) and torch.isfinite(out).all()
    (out**2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_make_sample_checks_cutoff():
    g = build_graph(np.eye(3) * 3, [[0, 0, 0]], [1], cutoff=5.0)
    with pytest.raises(ValueError, match="cutoff"):
        make_sample(g)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_cuda_matches_cpu():
    net = small_net(torch.float64)
    cells = [read_cell(c) for c in CELLS]
    y = predict(net, cells)
    batch = collate([make_sample(build_graph(*c)) for c in cells], device="cuda")
    with torch.no_grad():
        y_gpu = net.to("cuda")(batch).cpu()
    torch.testing.assert_close(y_gpu, y)


def test_species_table_cache_follows_weight_changes():
    net = small_net(torch.float64)
    cells = [read_cell(c) for c in CELLS]
    y0 = predict(net, cells)
    torch.testing.assert_close(predict(net, cells[:2]), y0[:2])  # served from the cache
    opt = torch.optim.AdamW(net.parameters(), 1e-2)
    batch = collate([make_sample(build_graph(*c), config=net.config) for c in cells])
    net(batch).square().mean().backward()
    opt.step()
    y1 = predict(net, cells)
    net.cache_species_tables = False
    torch.testing.assert_close(y1, predict(net, cells))
    assert not torch.allclose(y1, y0)
    net.cache_species_tables = True
    other = small_net(torch.float64, seed=5)
    net.load_state_dict(other.state_dict())
    torch.testing.assert_close(predict(net, cells), predict(other, cells))

"""Training-epoch and prediction speed of BeteNet against the e3nn reference, side by side.

    python benchmarks/model_speed.py --structures ../shared/structures/bete-net --epochs 2

Both networks train on the same crystals with random targets (speed only), batch size 32, AdamW
lr 5e-3, the same thread count; the reference in float64 as the paper ran it, the project in
``--dtype`` (float32 by default) with edge embeddings cached once per data set. Afterwards the
reference's trained weights are transferred to a float64 (and a float32) BeteNet and the
predictions on every crystal compared. The last two lines are ``epoch_speedup <x>`` and
``predict_speedup <y>`` (reference seconds / project seconds).

``large_ops_*`` rows count, for the first batch, the operators of one training step (forward +
backward) and of one forward (predict) whose output has more than 32768 elements — PyTorch's
grain size, above which an operator opens an OpenMP parallel region. At 2 threads on a machine
whose cores are busy with other work, each region costs milliseconds of waiting for the second
thread, so that count, not arithmetic, sets both networks' time, and the ratios drift with the
load. Measured on the shared 2-core machine under load 6–13 (docs/model.md, "Speed", has all runs):

    threads  epoch ×          predict ×        large ops train / predict (reference 310 / 107)
    2        1.79–4.55 (4 runs)  2.29–5.17        121 / 29  (before issue 11: 247 / 61)
    1        4.20 (before 3.02)  5.49 (before 4.76)
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from betenet_model import (  # noqa: E402
    BeteNet,
    NetworkConfig,
    build_graph,
    collate,
    load_reference_state_dict,
    make_sample,
)


def load_reference(path: Path):
    spec = importlib.util.spec_from_file_location("reference_gate_points", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"Cannot import the reference network from {path}.")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def with_default_dtype(dtype, fn, *args, **kwargs):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_default_dtype(old)


def train_epochs(net, batches, targets, bs, epochs, call, fused=False, opt=None):
    if opt is None:
        opt = torch.optim.AdamW(net.parameters(), 5e-3, weight_decay=0.0, fused=fused or None)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for k, b in enumerate(batches):
            out = call(net, b)
            loss = ((out - targets[k * bs : k * bs + out.shape[0]].to(out.dtype)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def count_large_ops(fn, grain=32768):
    """(all, large) ATen operator calls made by ``fn()`` (large: output > ``grain`` elements)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    views = {"view", "slice", "unsqueeze", "alias", "transpose", "t", "detach", "squeeze",
             "expand", "select", "reshape", "_unsafe_view", "as_strided", "permute", "split"}
    counts = [0, 0]

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            counts[0] += 1
            first = out[0] if isinstance(out, (tuple, list)) and out else out
            name = func.overloadpacket.__name__
            if isinstance(first, torch.Tensor) and first.numel() > grain and name not in views:
                counts[1] += 1
            return out

    with Count():
        fn()
    return tuple(counts)


def predict(net, batches, call):
    t0 = time.perf_counter()
    with torch.no_grad():
        outs = [call(net, b) for b in batches]
    return time.perf_counter() - t0, torch.cat(outs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", required=True, help="directory of CIF files")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument(
        "--reference", default=str(REPO.parent / "shared/bench/reference_gate_points.py")
    )
    ap.add_argument("--limit", type=int, default=0, help="use only the first N structures")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from ase.io import read

    torch.set_num_threads(a.threads)
    ref_mod = load_reference(Path(a.reference))
    files = sorted(glob.glob(str(Path(a.structures) / "*.cif")))
    if a.limit:
        files = files[: a.limit]
    if not files:
        raise SystemExit(f"No CIF files in {a.structures}.")
    bs = a.batch_size
    dtype = getattr(torch, a.dtype)

    # graphs: reference (ase) and project
    t0 = time.perf_counter()
    ref_graphs = with_default_dtype(torch.float64, ref_mod.graphs, files, 4.0)
    t_ref_graph = time.perf_counter() - t0
    atoms = [read(f) for f in files]
    t0 = time.perf_counter()
    cfg = NetworkConfig()
    samples = [
        make_sample(build_graph(x.cell.array, x.positions, x.numbers), config=cfg, dtype=dtype)
        for x in atoms
    ]
    t_graph = time.perf_counter() - t0
    ref_batches = [
        with_default_dtype(torch.float64, ref_mod.batch, ref_graphs[i : i + bs])
        for i in range(0, len(files), bs)
    ]
    batches = [collate(samples[i : i + bs]) for i in range(0, len(files), bs)]
    torch.manual_seed(0)
    targets = torch.rand(len(files), 51)

    torch.manual_seed(0)
    ref = with_default_dtype(torch.float64, ref_mod.ReferenceNet)
    torch.manual_seed(0)
    net = BeteNet(cfg).to(dtype)
    ref_call = lambda m, b: m(*b)  # noqa: E731
    own_call = lambda m, b: m(b)  # noqa: E731

    # warm-up one batch each (e3nn codegen, allocator), not timed
    with_default_dtype(torch.float64, train_epochs, ref, ref_batches[:1], targets, bs, 1, ref_call)
    train_epochs(net, batches[:1], targets, bs, 1, own_call)

    # interleaved (reference epoch, project epoch, ...) so that both see the same machine load
    ref_opt = torch.optim.AdamW(ref.parameters(), 5e-3, weight_decay=0.0)
    own_opt = torch.optim.AdamW(net.parameters(), 5e-3, weight_decay=0.0, fused=True)
    ref_epochs, own_epochs = [], []
    for _ in range(a.epochs):
        ref_epochs += with_default_dtype(
            torch.float64, train_epochs, ref, ref_batches, targets, bs, 1, ref_call, opt=ref_opt
        )
        own_epochs += train_epochs(net, batches, targets, bs, 1, own_call, opt=own_opt)
    plain = BeteNet(cfg).to(dtype)
    own_plain = train_epochs(plain, batches, targets, bs, 1, own_call, fused=False)
    t_ref_pred, y_ref = with_default_dtype(torch.float64, predict, ref, ref_batches, ref_call)
    t_pred, _ = predict(net, batches, own_call)
    t_ref_pred2, _ = with_default_dtype(torch.float64, predict, ref, ref_batches, ref_call)
    t_pred2, _ = predict(net, batches, own_call)
    t_ref_pred, t_pred = min(t_ref_pred, t_ref_pred2), min(t_pred, t_pred2)

    # transfer the reference's (trained) weights and compare predictions
    devs = {}
    for dt in (torch.float64, torch.float32):
        twin = BeteNet(cfg).to(dt)
        load_reference_state_dict(twin, ref.state_dict())
        _, y = predict(twin, [b.to(dtype=dt) for b in batches], own_call)
        scale = y_ref.abs().max(dim=1).values.clamp(min=1e-12)
        rel = ((y.double() - y_ref).abs().max(dim=1).values / scale)[
            y_ref.abs().max(dim=1).values > 0
        ]
        devs[dt] = (
            rel.max().item() if rel.numel() else 0.0,
            (y.double() - y_ref).abs().max().item(),
        )

    def step(m, b, c, dt):
        return lambda: c(m, b).to(dt).square().mean().backward()

    ops = {}
    for name, m, b, c, dt in (("reference", ref, ref_batches[0], ref_call, torch.float64),
                              ("bete", net, batches[0], own_call, dtype)):
        with torch.no_grad():
            c(m, b)  # species tables cached as in predict
        pred = with_default_dtype(dt, count_large_ops, lambda m=m, b=b, c=c: predict(m, [b], c))
        ops[name] = (with_default_dtype(dt, count_large_ops, step(m, b, c, dt)), pred)

    n_params = sum(p.numel() for p in net.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    row = "{:24s} {:>12s} {:>12s}{}"
    print(f"structures {len(files)}  batch {bs}  threads {a.threads}  epochs {a.epochs}")
    print(row.format("", "reference", "bete", ""))
    print(row.format("dtype", "float64", a.dtype, ""))
    print(row.format("parameters", str(n_ref), str(n_params), ""))
    print(
        row.format(
            "graph_build_s",
            f"{t_ref_graph:.2f}",
            f"{t_graph:.2f}",
            "   (bete: graphs + features + edge cache)",
        )
    )
    print(
        row.format(
            "train_epoch_s (median)",
            f"{np.median(ref_epochs):.3f}",
            f"{np.median(own_epochs):.3f}",
            "   (bete: AdamW fused=True; reference: AdamW default)",
        )
    )
    print(
        row.format(
            "  bete, AdamW default", "", f"{own_plain[0]:.3f}", "   (one epoch, for comparison)"
        )
    )
    print(row.format("predict_all_s", f"{t_ref_pred:.3f}", f"{t_pred:.3f}", "   (best of 2)"))
    for k, what in ((0, "train_step"), (1, "predict")):
        print(row.format(f"large_ops_{what}", *(f"{ops[n][k][1]}/{ops[n][k][0]}"
                                                for n in ("reference", "bete")),
                         "   (first batch: ops > 32768 elements / all ops)"))
    for dt, (rel, ab) in devs.items():
        name = str(dt).replace("torch.", "")
        print(
            f"max_rel_deviation_{name} {rel:.3e}  "
            f"(max abs {ab:.3e}; transferred weights vs float64 reference)"
        )
    print(f"epoch_speedup {np.median(ref_epochs) / np.median(own_epochs):.2f}")
    print(f"predict_speedup {t_ref_pred / t_pred:.2f}")


if __name__ == "__main__":
    main()

"""Inference throughput: structures per second for one BeteNet member and a 10-member ensemble.

    python benchmarks/inference.py --structures ../shared/structures/bete-net

Samples (graphs, inputs, cached edge embeddings) are prepared once (timed separately); each
member predicts every structure in batches of ``--batch-size`` under ``torch.no_grad``.
Members have random weights (speed only).
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from betenet_model import BeteNet, NetworkConfig, build_graph, collate, make_sample  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", required=True, help="directory of CIF files")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from ase.io import read

    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    files = sorted(glob.glob(str(Path(a.structures) / "*.cif")))
    if not files:
        raise SystemExit(f"No CIF files in {a.structures}.")
    atoms = [read(f) for f in files]
    cfg = NetworkConfig()
    t0 = time.perf_counter()
    samples = [
        make_sample(build_graph(x.cell.array, x.positions, x.numbers), config=cfg, dtype=dtype)
        for x in atoms
    ]
    t_prep = time.perf_counter() - t0
    members = []
    for seed in range(a.members):
        torch.manual_seed(seed)
        members.append(BeteNet(cfg).to(dtype).eval())

    n = len(samples)
    print(f"structures {n}  members {a.members}  threads {a.threads}  dtype {a.dtype}")
    print(f"prepare samples (graphs + inputs + edge cache): {t_prep:.2f} s  ({n / t_prep:.0f} /s)")
    print(f"{'batch':>6s} {'member_s':>9s} {'struct/s/member':>16s} {'ensemble_s':>11s} "
          f"{'struct/s (ensemble)':>20s}")
    for bs in a.batch_size:
        batches = [collate(samples[i : i + bs]) for i in range(0, n, bs)]
        with torch.no_grad():
            members[0](batches[0])  # warm-up
            t0 = time.perf_counter()
            for b in batches:
                members[0](b)
            t_one = time.perf_counter() - t0
            t0 = time.perf_counter()
            for b in batches:
                torch.stack([m(b) for m in members]).mean(0)
            t_ens = time.perf_counter() - t0
        print(f"{bs:>6d} {t_one:>9.3f} {n / t_one:>16.0f} {t_ens:>11.3f} {n / t_ens:>20.0f}")


if __name__ == "__main__":
    main()

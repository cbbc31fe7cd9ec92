"""Graph-construction time for a directory of CIF files (bete-net: 806 cells of 1-8 atoms).

    python benchmarks/graph_build.py --structures ../shared/structures/bete-net

Reads every CIF once (not timed), then times ``build_graph`` alone, ``build_graph`` plus the node
inputs and cached edge embeddings (``make_sample``), and ASE's ``neighbor_list`` (the reference's
graph builder) on the same cells, and checks that both give the same number of edges.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from betenet_model import build_graph, make_sample  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", required=True, help="directory of CIF files")
    ap.add_argument("--cutoff", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (best is reported)")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    from ase.io import read
    from ase.neighborlist import neighbor_list

    files = sorted(glob.glob(str(Path(a.structures) / "*.cif")))
    if not files:
        raise SystemExit(f"No CIF files in {a.structures}.")
    atoms = [read(f) for f in files]
    cells = [(x.cell.array, x.positions, x.numbers) for x in atoms]

    def best(fn):
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_graph, graphs = best(lambda: [build_graph(*c, cutoff=a.cutoff) for c in cells])
    t_sample, _ = best(lambda: [make_sample(g) for g in graphs])
    t_ase, ase_nl = best(
        lambda: [neighbor_list("ijS", x, a.cutoff, self_interaction=True) for x in atoms]
    )
    n_edges = np.array([g.num_edges for g in graphs])
    same = all(len(nl[0]) == n for nl, n in zip(ase_nl, n_edges, strict=True))
    n_atoms = sum(len(x) for x in atoms)
    print(f"structures {len(files)}  atoms {n_atoms}  edges {int(n_edges.sum())}  "
          f"cutoff {a.cutoff} A  (best of {a.repeat}, 1 thread)")
    print(f"{'step':34s} {'total_s':>9s} {'ms/structure':>13s}")
    for name, t in [("build_graph", t_graph), ("make_sample (inputs + edge cache)", t_sample),
                    ("ase neighbor_list (reference)", t_ase)]:
        print(f"{name:34s} {t:>9.3f} {1e3 * t / len(files):>13.3f}")
    print(f"edges_match_ase {same}")
    print(f"graph_build_s {t_graph:.3f}")


if __name__ == "__main__":
    main()

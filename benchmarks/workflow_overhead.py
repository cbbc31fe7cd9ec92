"""Overhead of the electron-phonon flow over running the same QE inputs by hand.

    python benchmarks/workflow_overhead.py --element Pb --preset fast \
        --pseudos ../shared/pseudo/pslibrary-1.0.0-pbe-us --repeats 1

For one structure (default fcc Pb, a = 5.03 Å) the project's generator writes the inputs once.
The *raw* chain runs them in one fresh directory, exactly as a user would by hand:
``pw.x`` (dense, la2F) → ``pw.x`` → ``ph.x`` → ``q2r.x`` → ``matdyn.x``, each with the command
line the settings give (``workflows.qe.run.build_command``: the same ``mpirun -np N`` and
``-nk``), timed with ``time.perf_counter`` around the five subprocesses only.
The *flow* is ``workflows.qe.local.run_elph`` with a fresh embedded store and a fresh scratch
directory (so nothing is reused), timed around the whole call: input generation, jobflow,
markers, output checks, parsing, phonopy stability, the task document and its store write,
scratch clean-up.  With ``--repeats N`` the two alternate (raw, flow, flow, raw, ...) so a
drift of the (shared, noisy) machine's load hits both sides equally.

Prints one row per run, the per-executable walls of each side, and last
``overhead_ratio <x>`` = total flow wall / total raw wall (target < 1.05).

On a shared machine the load can change by a factor of several between the raw and the flow
run, which swamps a 5 % effect (seen here: 0.37).  So the flow's own overhead is also given
directly: ``flow_non_qe_s`` = flow wall − the QE walls the flow itself timed (its per-step
``wall_times_s``), and ``flow_internal_ratio`` = flow wall / those QE walls, which the load
affects equally on both sides of the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pymatgen.core import Lattice, Structure  # noqa: E402

CELLS = {  # element: (lattice, a in Å)
    "Pb": ("fcc", 5.03), "Al": ("fcc", 4.04), "Nb": ("bcc", 3.30), "Cu": ("fcc", 3.61),
}
RAW_CHAIN = (("pw", "scf_dense"), ("pw", "scf"), ("ph", "ph"), ("q2r", "q2r"),
             ("matdyn", "matdyn"))


def conventional(element: str, a: float | None) -> Structure:
    kind, a0 = CELLS[element]
    a = a or a0
    if kind == "fcc":
        frac = [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]]
    else:
        frac = [[0, 0, 0], [.5, .5, .5]]
    return Structure(Lattice.cubic(a), [element] * len(frac), frac)


def run_raw(input_set, directory: Path) -> dict[str, float]:
    """Write the inputs and run the five executables in ``directory``; walls in s."""
    from workflows.qe.run import _environment, build_command

    input_set.write(directory)
    walls: dict[str, float] = {}
    for code, step in RAW_CHAIN:
        name = f"{step}.in"
        cmd = build_command(code, name, input_text=(directory / name).read_text())
        t0 = time.perf_counter()
        with open(directory / f"{step}.out", "wb") as out:
            rc = subprocess.run(cmd, cwd=directory, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_environment(cmd)).returncode
        walls[step] = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"raw {step} failed (exit {rc}); see {directory / (step + '.out')}")
    return walls


def run_flow(structure: Structure, preset: str, pseudos: str, base: Path) -> tuple[dict, float]:
    """The whole run_elph call with a fresh store and scratch; (step walls, total wall)."""
    from stores.config import load_job_store
    from workflows.qe.flows import ElphFlowMaker
    from workflows.qe.local import run_elph

    store = load_job_store(str(base / "store"))
    store.connect()
    maker = ElphFlowMaker.from_preset(preset=preset, pseudo_family=pseudos,
                                      scratch_dir=str(base / "scratch"))
    t0 = time.perf_counter()
    outcome = run_elph([("bench", structure)], maker, store, reuse=False)[0]
    total = time.perf_counter() - t0
    doc = outcome.document or {}
    if doc.get("status") not in ("completed", "unstable"):
        raise SystemExit(f"flow failed: {outcome.error or doc.get('status')}")
    return doc, total


def flow_step_walls(doc: dict) -> dict[str, float]:
    walls = doc.get("wall_times_s") or doc.get("wall_time_s") or {}
    return {k: float(v) for k, v in walls.items()} if isinstance(walls, dict) else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--element", default="Pb", choices=sorted(CELLS))
    p.add_argument("--a", type=float, default=None, help="lattice constant (Å)")
    p.add_argument("--preset", default="fast")
    p.add_argument("--pseudos", default=str(REPO.parent / "shared/pseudo/pslibrary-1.0.0-pbe-us"))
    p.add_argument("--repeats", type=int, default=1,
                   help="pairs of (raw, flow) runs, alternating order")
    p.add_argument("--first", choices=("raw", "flow"), default="raw",
                   help="which side runs first in the first pair")
    p.add_argument("--workdir", default=None, help="parent of the run directories (kept)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from workflows.qe.pseudos import PseudoFamily
    from workflows.qe.run import build_command
    from workflows.qe.sets import ElphInputGenerator

    structure = conventional(args.element, args.a)
    gen = ElphInputGenerator(preset=args.preset, family=PseudoFamily.from_path(args.pseudos))
    input_set = gen.get_input_set(structure)
    base = Path(args.workdir or tempfile.mkdtemp(prefix="bete-overhead-")).resolve()
    base.mkdir(parents=True, exist_ok=True)
    print(f"# {args.element} ({CELLS[args.element][0]}), preset {args.preset}, "
          f"k {input_set.k_grid} dense {input_set.k_grid_dense} q {input_set.q_grid}, "
          f"ecutwfc {input_set.ecutwfc} Ry; pw command: "
          f"{' '.join(build_command('pw', 'scf.in', input_text=input_set.scf.get_str()))}")
    print(f"# run directories under {base}")

    rows = []
    raw_total = flow_total = flow_qe_total = 0.0
    first = ("raw", "flow") if args.first == "raw" else ("flow", "raw")
    for rep in range(args.repeats):
        order = first if rep % 2 == 0 else first[::-1]
        for kind in order:
            d = base / f"{kind}{rep}"
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            if kind == "raw":
                walls = run_raw(input_set, d)
                total = sum(walls.values())
                raw_total += total
                rows.append((kind, rep, total, walls, None))
            else:
                doc, total = run_flow(structure, args.preset, args.pseudos, d)
                flow_total += total
                steps = flow_step_walls(doc)
                flow_qe_total += sum(steps.values())
                rows.append((kind, rep, total, steps, doc.get("lambda_")))
            print(f"  done {kind} #{rep}: {total:.1f} s", flush=True)

    print()
    print(f"{'run':<6}{'rep':>4}{'wall_s':>10}  {'lambda':>8}  per step (s)")
    for kind, rep, total, walls, lam in rows:
        steps = " ".join(f"{k}={v:.1f}" for k, v in walls.items())
        lam_s = f"{lam:8.3f}" if lam is not None else f"{'-':>8}"
        print(f"{kind:<6}{rep:>4}{total:>10.1f}  {lam_s}  {steps}")
    print(f"raw_total_s {raw_total:.1f}")
    print(f"flow_total_s {flow_total:.1f}")
    print(f"overhead_s {flow_total - raw_total:.1f}")
    if flow_qe_total > 0:
        print(f"flow_non_qe_s {flow_total - flow_qe_total:.1f}")
        print(f"flow_internal_ratio {flow_total / flow_qe_total:.4f}")
    print(f"overhead_ratio {flow_total / raw_total:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fault injection: a campaign killed with SIGKILL at random moments, resumed each time.

    nice -n 10 python benchmarks/campaign_chaos.py --kills 12 --seed 0 \
        --out benchmarks/results/campaign_chaos.md

Three tiny cells (fcc Al at three lattice constants, Debian's LDA file, 2³ k / 2³ q, 15 Ry,
a coarse matdyn mesh: well under a minute of QE each) go through ``bete campaign`` twice:

1. *reference*: two uninterrupted runs, each into its own store (their λ differ by QE's own
   run-to-run noise: the scale against which a resumed run's λ is judged);
2. *chaos*: the same command into another store, started again and again; each start is
   killed with SIGKILL a random time (seeded, ``--min-delay`` to ``--max-delay`` s) after it
   launched its first QE step — the Python process only, so its QE processes run on as
   strays, as after ``kill -9`` or an OOM kill (with ``--kill-qe`` its QE processes too, as
   when a node goes down: ph.x then resumes inside its q points) — until ``--kills`` kills
   have landed or a start finishes the campaign; then one last start runs to the end.  A
   kill lands in a QE step, or in the Python work between steps (parsing, document writes,
   claims).

It prints what a campaign promises after any kill:

- *repeated QE steps*: a step that had finished (its ``.bete/<step>.json`` marker existed
  before a start) and ran again in that start (the start's ``<step>: running`` log line);
- *q points computed again*: a ph.x resumed at an earlier irreducible q point than a previous
  resume of the same cell (finished q points thrown away); a ph.x of the cell started again
  without a resume counts as resumed at q point 1;
- *lost*: a cell without a final task document after the last start;
- *duplicated*: a cell with more than one task document;
- *stray QE processes*: QE (or mpirun) still working in the scratch folder at the end;
- *stale claims*: claim files left in the claim folder at the end;
- λ of every cell next to the reference run's.

Goal: 0 repeated, 0 lost, 0 duplicated, 0 stray, 0 stale, the reference λ.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pymatgen.core import Lattice, Structure  # noqa: E402

from stores.config import load_job_store  # noqa: E402
from workflows.qe.run import stray_qe_processes  # noqa: E402

TINY = {"k_grid": [2, 2, 2], "k_grid_dense": [4, 4, 4], "q_grid": [2, 2, 2],
        "ecutwfc": 15, "ecutrho": 60, "matdyn": {"input": {"nk1": 8, "nk2": 8, "nk3": 8}}}
FCC = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
LATTICE_A = (4.00, 4.02, 4.04)
STEP_RUN = re.compile(r"workflows\.qe\.steps: (\w+): running \w+ in (\S+) \(attempt")
PH_LAUNCH = re.compile(r"(?:ph: resuming the interrupted run at irreducible q point (\d+)\n.*?)?"
                       r"ph: running ph in (\S+) \(attempt 1\)")


def make_cells(folder: Path) -> Path:
    """The three fcc Al cells (conventional, 4 atoms; the flow reduces them to 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(LATTICE_A):
        Structure(Lattice.cubic(a), ["Al"] * 4, FCC).to(filename=str(folder / f"al{i}.cif"))
    return folder


def command(cells: Path, base: Path, pseudos: str) -> list[str]:
    """``bete campaign`` on the cells into ``base``/store, scratch in ``base``/scratch."""
    return [sys.executable, "-c", "import sys; from launchers.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "campaign", str(cells), "--override",
            json.dumps(TINY), "--pseudos", pseudos, "--store", str(base / "store"),
            "--scratch", str(base / "scratch"), "--format", "json"]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def markers(scratch: Path) -> set[tuple[str, str]]:
    """(calculation directory, step) of every finished step."""
    return {(str(m.parent.parent.resolve()), m.stem) for m in scratch.glob("*/.bete/*.json")}


def started_steps(log: str) -> list[tuple[str, str]]:
    """(calculation directory, step) of every QE step a start ran (its log lines)."""
    return [(str(Path(d).resolve()), step) for step, d in STEP_RUN.findall(log)]


def elph_documents(store_dir: Path) -> list[dict]:
    """Every electron-phonon task document of the store."""
    store = load_job_store(str(store_dir), create=False, read_only=True)
    store.connect()
    try:
        return [d["output"] for d in store.query({"output.doc_type": "elph_task"})]
    finally:
        store.close()


def run_to_end(cmd: list[str], log: Path, timeout_s: float) -> subprocess.CompletedProcess:
    with open(log, "w") as out:
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=environment(),
                              timeout=timeout_s, check=False)


def chaos(cmd: list[str], base: Path, kills: int, rng: random.Random, min_delay: float,
          max_delay: float, timeout_s: float, kill_qe: bool = False) -> dict:
    """Start, kill after a random delay, repeat until ``kills`` kills; then run to the end.

    ``kill_qe``: kill the start's QE processes too, at the same moment (a node going down).
    """
    scratch = base / "scratch"
    base.mkdir(parents=True, exist_ok=True)
    events, repeated, starts = [], [], 0
    finished_early = False
    resumed_at: dict[str, int] = {}
    backwards: list[str] = []
    while True:
        final = len(events) >= kills or finished_early
        before = markers(scratch)
        log = base / f"start-{starts:02d}.log"
        starts += 1
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    env=environment())
            if final:
                proc.wait(timeout=timeout_s)
            else:
                while proc.poll() is None and not STEP_RUN.search(log.read_text()):
                    time.sleep(0.1)     # until this start launches its first QE step
                delay = rng.uniform(min_delay, max_delay)
                try:
                    proc.wait(timeout=delay)
                    finished_early = True   # nothing left to kill: the campaign is done
                except subprocess.TimeoutExpired:
                    where = _where(scratch, log.read_text())
                    os.kill(proc.pid, signal.SIGKILL)
                    for pid in stray_qe_processes(scratch) if kill_qe else []:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    proc.wait()
                    events.append({"start": starts, "after_s": round(delay, 1), "in": where})
        text = log.read_text()
        repeated += [f"start {starts}: {Path(d).name} {step}" for d, step in
                     started_steps(text) if (d, step) in before]
        for q, directory in PH_LAUNCH.findall(text):
            cell = Path(directory).name
            if not q and cell not in resumed_at:
                resumed_at[cell] = 1  # the cell's first ph.x
                continue
            iq = int(q) if q else 1   # ph.x run again from the start, without a resume
            if iq < resumed_at[cell]:
                backwards.append(f"start {starts}: {cell} ph resumed at q {iq} after "
                                 f"{resumed_at[cell]}")
            resumed_at[cell] = max(resumed_at[cell], iq)
        if final:
            return {"events": events, "starts": starts, "repeated": repeated,
                    "backwards": backwards, "final_rc": proc.returncode, "final_log": text}


def _where(scratch: Path, log: str) -> str:
    """What the start was doing when killed: a QE step, or Python after one."""
    started = started_steps(log)
    if not started:
        return "Python, before its first QE step"
    directory, step = started[-1]
    if stray_qe_processes(scratch):
        return f"QE: {Path(directory).name} {step}"
    return f"Python, after {Path(directory).name} {step}"


def by_cell(docs: list[dict]) -> dict[str, list[dict]]:
    cells: dict[str, list[dict]] = {}
    for d in docs:
        cells.setdefault(str(d.get("source_id")), []).append(d)
    return cells


FLOW_JOBS = 4
"""Jobs of a cell's flow: scf, ph, q2r_matdyn, task document."""


def report(args: argparse.Namespace, ref: dict[str, list[dict]],
           ref2: dict[str, list[dict]], result: dict,
           docs: dict[str, list[dict]], n_jobs: dict[str, int], stray: list[int],
           stale: list[str], walls: dict[str, float]) -> str:
    cells = [f"al{i}" for i in range(len(LATTICE_A))]
    lost = [c for c in cells if not docs.get(c)]
    duplicated = [c for c in cells if len(docs.get(c, [])) > 1]
    kills_in_qe = sum(1 for e in result["events"] if e["in"].startswith("QE"))
    lines = [
        "# Campaign chaos: SIGKILL at random moments, resumed each time",
        "",
        f"`nice -n 10 python benchmarks/campaign_chaos.py --kills {args.kills} --seed "
        f"{args.seed} --min-delay {args.min_delay:g} --max-delay {args.max_delay:g} "
        f"--pseudos {args.pseudos}{' --kill-qe' if args.kill_qe else ''}`",
        "",
        f"Cells: fcc Al at a = {', '.join(f'{a:g}' for a in LATTICE_A)} Å, `--override "
        f"'{json.dumps(TINY)}'`. First uninterrupted run: {walls['reference']:.0f} s; "
        f"chaos: {result['starts']} starts, {walls['chaos']:.0f} s.",
        "",
        "| measure | value | goal |",
        "| --- | --- | --- |",
        f"| SIGKILLs | {len(result['events'])} ({kills_in_qe} while QE ran) | ≥ 10 |",
        f"| finished QE steps run again | {len(result['repeated'])} | 0 |",
        f"| ph.x resumes that went back to an earlier q point | {len(result['backwards'])} "
        "| 0 |",
        f"| cells lost (no task document) | {len(lost)} | 0 |",
        f"| cells duplicated (> 1 task document) | {len(duplicated)} | 0 |",
        f"| job outputs stored again (job documents beyond {FLOW_JOBS} per cell) | "
        f"{sum(max(0, n - FLOW_JOBS) for n in n_jobs.values())} | 0 |",
        f"| stray QE processes at the end | {len(stray)} | 0 |",
        f"| stale claims at the end | {len(stale)} | 0 |",
        f"| last start's exit status | {result['final_rc']} | 0 |",
        "",
        "Job documents: every job output of the cell's flow (scf, ph, q2r_matdyn, task "
        "document; 4 when each job stored its output once). λ at σ = 0.02 Ry.",
        "",
        "| cell | task documents | job documents | status | λ chaos | λ reference | Δλ | "
        "Δλ of a second uninterrupted run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in cells:
        mine = docs.get(c, [])
        theirs = ref.get(c, [])
        lam = mine[0].get("lambda_") if mine else None
        lam_ref = theirs[0].get("lambda_") if theirs else None
        lam_2 = ref2[c][0].get("lambda_") if ref2.get(c) else None
        lines.append(f"| {c} | {len(mine)} | {n_jobs.get(c, 0)} | "
                     f"{mine[0].get('status') if mine else '-'} | "
                     f"{'-' if lam is None else f'{lam:.6f}'} | "
                     f"{'-' if lam_ref is None else f'{lam_ref:.6f}'} | "
                     f"{_delta(lam, lam_ref)} | {_delta(lam_2, lam_ref)} |")
    lines += ["", "Kills (start, seconds after its first QE step, what ran):", ""]
    lines += [f"- start {e['start']}, {e['after_s']} s: {e['in']}" for e in result["events"]]
    if result["repeated"]:
        lines += ["", "Finished steps run again:", ""] + [f"- {r}" for r in result["repeated"]]
    if result["backwards"]:
        lines += ["", "Resumes that went back:", ""] + [f"- {r}" for r in result["backwards"]]
    if stale:
        lines += ["", "Stale claims:", ""] + [f"- {s}" for s in stale]
    return "\n".join(lines) + "\n"


def _delta(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{abs(a - b):.1e}"


def job_documents_per_cell(store_dir: Path, docs: dict[str, list[dict]]) -> dict[str, int]:
    """Job outputs of each cell's flow (scf, ph, q2r_matdyn, task document: 4 when every
    job ran once), found by the input hash the jobs' metadata carry."""
    store = load_job_store(str(store_dir), create=False, read_only=True)
    store.connect()
    try:
        return {cell: store.count({"metadata.input_hash": found[0].get("input_hash")})
                for cell, found in docs.items() if found}
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs to land (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--min-delay", type=float, default=0.3,
                        help="shortest time from a start's first QE step to its kill, s "
                        "(default 0.3)")
    parser.add_argument("--max-delay", type=float, default=3.0,
                        help="longest time from a start's first QE step to its kill, s "
                        "(default 3; the campaign must not finish before --kills kills)")
    parser.add_argument("--pseudos", default="debian",
                        help="pseudopotential family (default Debian's LDA files)")
    parser.add_argument("--work", type=Path, default=None,
                        help="working folder (default: a new folder under /tmp)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="limit of an uninterrupted start, s (default 1800)")
    parser.add_argument("--kill-qe", action="store_true",
                        help="kill the QE processes too, not only the Python process (a node "
                        "going down: ph.x then resumes inside its q points)")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="bete-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    cells = make_cells(work / "cells")
    walls = {}
    t0 = time.time()
    print(f"reference run in {work / 'reference'} ...", file=sys.stderr, flush=True)
    ref_run = run_to_end(command(cells, work / "reference", args.pseudos),
                         work / "reference.log", args.timeout)
    walls["reference"] = time.time() - t0
    if ref_run.returncode != 0:
        print((work / "reference.log").read_text()[-3000:], file=sys.stderr)
        return 1
    ref = by_cell(elph_documents(work / "reference" / "store"))
    again = run_to_end(command(cells, work / "reference-2", args.pseudos),
                       work / "reference-2.log", args.timeout)
    ref2 = by_cell(elph_documents(work / "reference-2" / "store")) if again.returncode == 0 \
        else {}
    t0 = time.time()
    print(f"chaos in {work / 'chaos'} ...", file=sys.stderr, flush=True)
    result = chaos(command(cells, work / "chaos", args.pseudos), work / "chaos", args.kills,
                   random.Random(args.seed), args.min_delay, args.max_delay, args.timeout,
                   args.kill_qe)
    walls["chaos"] = time.time() - t0
    time.sleep(1.0)
    docs = by_cell(elph_documents(work / "chaos" / "store"))
    n_jobs = job_documents_per_cell(work / "chaos" / "store", docs)
    stray = stray_qe_processes(work / "chaos" / "scratch")
    claims = work / "chaos" / "store" / "claims"
    stale = sorted(p.name for p in claims.glob("*") if ".claim" in p.name or ".stale" in p.name)
    text = report(args, ref, ref2, result, docs, n_jobs, stray, stale, walls)
    print(text)
    if args.out:
        args.out.write_text(text)
    if len(result["events"]) < args.kills:
        print(f"the campaign finished after {len(result['events'])} of {args.kills} kills: "
              "lower --max-delay", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

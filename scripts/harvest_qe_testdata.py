"""Regenerate the QE reference data under ``tests/data/qe`` with real runs.

Runs the hand-written inputs kept next to the outputs (fcc Al el-ph chain,
Si scf, deliberately failing Al runs) through :func:`workflows.qe.run.run_qe`
in a scratch directory and copies the small files back.  Needs QE 6.7
(``pw.x ph.x q2r.x matdyn.x``) and the pslibrary pseudopotentials; takes about
two minutes on two cores.  One QE run at a time.

Usage::

    OMP_NUM_THREADS=1 BETE_NPROCS=2 python scripts/harvest_qe_testdata.py \
        [--pseudo-dir /work/shared/pseudo/pslibrary-1.0.0-pbe-us] [--work /tmp/qe-harvest] \
        [--only al,si,failures]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from workflows.qe.errors import QEError
from workflows.qe.run import run_qe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "qe"
AL_KEEP = ["scf_dense.out", "scf.out", "ph.out", "q2r.out", "matdyn.out", "al.dyn0", "al.dyn1",
           "al.dyn2", "al.dyn3", "al.fc", "lambda", "al.phdos", "al.freq"]


def _prepare(work: Path, name: str, pseudo_dir: Path, elements: list[str], inputs: list[Path]
             ) -> Path:
    directory = work / name
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "pseudo").mkdir(parents=True)
    for el in elements:
        upf = next(pseudo_dir.glob(f"{el}.pbe-*.UPF"))
        (directory / "pseudo" / upf.name).symlink_to(upf)
    for path in inputs:
        shutil.copy(path, directory / path.name)
    return directory


def _expect_failure(code: str, inp: str, directory: Path, **kwargs) -> dict:
    try:
        run_qe(code, inp, directory, **kwargs)
    except QEError as err:
        return {"input": inp, "kind": err.kind, "error_line": err.error_line}
    return {"input": inp, "kind": None, "error_line": "finished without error"}


def harvest_al(work: Path, pseudo_dir: Path) -> dict:
    """Run the fcc Al chain: scf (dense, la2F) → scf → ph (el-ph interpolated) → q2r → matdyn."""
    src = DATA / "al"
    d = _prepare(work, "al", pseudo_dir, ["Al"], sorted(src.glob("*.in")))
    times = {}
    start = time.perf_counter()
    for code, name in [("pw", "scf_dense"), ("pw", "scf"), ("ph", "ph"), ("q2r", "q2r"),
                       ("matdyn", "matdyn")]:
        times[name] = run_qe(code, f"{name}.in", d).wall_time_s
    times["total"] = time.perf_counter() - start
    for name in AL_KEEP + [p.name for p in d.glob("a2F.dos*")]:
        shutil.copy(d / name, src / name)
    (src / "elph_dir").mkdir(exist_ok=True)
    for path in (d / "elph_dir").iterdir():
        shutil.copy(path, src / "elph_dir" / path.name)
    shutil.copy(d / "tmp" / "al.save" / "data-file-schema.xml", src / "data-file-schema.xml")
    return times


def harvest_si(work: Path, pseudo_dir: Path) -> dict:
    """Diamond Si scf with smearing and with fixed occupations (the insulator check)."""
    src = DATA / "si"
    d = _prepare(work, "si", pseudo_dir, ["Si"], [src / "scf.in", src / "scf_fixed.in"])
    times = {}
    for name, prefix, xml in [("scf", "si", "data-file-schema.xml"),
                              ("scf_fixed", "si_fixed", "data-file-schema-fixed.xml")]:
        times[name] = run_qe("pw", f"{name}.in", d).wall_time_s
        shutil.copy(d / f"{name}.out", src / f"{name}.out")
        shutil.copy(d / "tmp" / f"{prefix}.save" / "data-file-schema.xml", src / xml)
    return times


def harvest_failures(work: Path, pseudo_dir: Path) -> dict:
    """Failing Al runs for the handlers, plus a ph.x stop/restart pair."""
    src = DATA / "failures"
    al = DATA / "al"
    d = _prepare(work, "failures", pseudo_dir, ["Al"],
                 sorted(src.glob("*.in")) + [al / "scf_dense.in", al / "scf.in", al / "ph.in"])
    report = {}
    for name in ("al_scf_maxstep", "al_scf_bracket"):
        report[name] = _expect_failure("pw", f"{name}.in", d)
    run_qe("pw", "scf_dense.in", d)
    run_qe("pw", "scf.in", d)
    report["al_ph_niter"] = _expect_failure("ph", "al_ph_niter.in", d)
    # ph.x stopped by its own max_seconds, then restarted with recover=.true.
    # (fresh _ph0: the single-q run above leaves a status file that breaks recover)
    shutil.rmtree(d / "tmp" / "_ph0", ignore_errors=True)
    report["al_ph_max_seconds"] = _expect_failure("ph", "al_ph_max_seconds.in", d)
    report["al_ph_recover"] = _expect_failure("ph", "al_ph_recover.in", d)
    for name in ("al_scf_maxstep", "al_scf_bracket", "al_ph_niter", "al_ph_max_seconds",
                 "al_ph_recover"):
        shutil.copy(d / f"{name}.out", src / f"{name}.out")
    # ph.x killed from outside (SIGTERM by run_qe's timeout), then recover=.true.
    shutil.rmtree(d / "tmp" / "_ph0", ignore_errors=True)
    report["al_ph_sigterm"] = _expect_failure("ph", "al_ph_sigterm.in", d, timeout=4.0)
    report["al_ph_sigterm_recover"] = _expect_failure("ph", "al_ph_sigterm_recover.in", d)
    for name in ("al_ph_sigterm", "al_ph_sigterm_recover"):
        shutil.copy(d / f"{name}.out", src / f"{name}.out")
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the harvest and print a JSON summary (wall times, observed failure kinds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pseudo-dir", type=Path,
                        default=Path("/work/shared/pseudo/pslibrary-1.0.0-pbe-us"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/qe-harvest"))
    parser.add_argument("--only", default="al,si,failures")
    args = parser.parse_args(argv)
    steps = {"al": harvest_al, "si": harvest_si, "failures": harvest_failures}
    summary = {}
    for name in args.only.split(","):
        summary[name] = steps[name](args.work, args.pseudo_dir)
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

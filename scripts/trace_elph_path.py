"""Count the project modules a structure passes through in ``bete dfpt run``.

    python scripts/trace_elph_path.py [--pseudos DIR]

Runs ``bete dfpt run`` (``launchers.cli.main``) on fcc Al with the test grids and QE
replaced at its one seam (``workflows.qe.run.run_qe`` → the recorded real run of
``tests/data/qe/al``, as the mocked flow tests do), under :func:`sys.setprofile`.

Counted, from the call of ``launchers.cli.dfpt.run`` to its return:

- *module entries*: calls into a project function whose module differs from the module of
  the nearest project frame below it (library frames such as jobflow's are transparent;
  module-level code run by an import is not counted);
- *module returns*: those calls returning, i.e. a value handed back across a module border;
- how often each module is entered, and the distinct (caller → callee) module edges;
- how many input sets are built (``ElphInputGenerator.get_input_set``) and how many
  generators project code constructs (jobflow's own JSON round trips of job arguments
  are left out).

A generator resumed after a ``yield`` is not a new entry.

Prints a table; the numbers are a property of the code, the same on any machine.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PACKAGES = ("workflows", "stores", "launchers", "betenet_model")
AL_CIF = """data_Al
_cell_length_a 4.04
_cell_length_b 4.04
_cell_length_c 4.04
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Al1 Al 0 0 0
Al2 Al 0 0.5 0.5
Al3 Al 0.5 0 0.5
Al4 Al 0.5 0.5 0
"""
COARSE = ('{"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2], '
          '"ecutwfc": 25, "ecutrho": 200, "nbnd": 10}')


def _called_from_project(frame) -> bool:
    """Whether project code made this call (``dataclasses.replace`` looked through)."""
    caller = frame.f_back
    while caller is not None and caller.f_globals.get("__name__") == "dataclasses":
        caller = caller.f_back
    return caller is not None and caller.f_globals.get("__name__", "").split(".")[0] in PACKAGES


class PathCounter:
    """A :func:`sys.setprofile` hook counting module entries below one function."""

    def __init__(self, start: str, watch: dict | None = None) -> None:
        self.start = start  # "module:function" where counting begins
        self.watch = watch or {}  # code object -> name: calls from project code counted
        self.watched: Counter[str] = Counter()
        self.stack: list[tuple[str | None, bool]] = []  # (project module or None, border)
        self.active = 0  # depth of the start function's frame (+1), 0 = outside
        self.imports = 0  # module-level code frames open
        self.entries: Counter[str] = Counter()
        self.edges: Counter[tuple[str, str]] = Counter()
        self.returns = 0
        self.functions: Counter[str] = Counter()
        self.generators: dict[int, object] = {}  # generator frames already entered (kept alive)

    def _project_below(self) -> str | None:
        return next((m for m, _ in reversed(self.stack) if m is not None), None)

    def __call__(self, frame, event: str, _arg) -> None:
        """Profile hook: count a call that crosses into another project module."""
        if event == "call":
            code = frame.f_code
            module = frame.f_globals.get("__name__", "")
            if code.co_name == "<module>":
                self.imports += 1
                self.stack.append((None, False))
                return
            ours = module.split(".")[0] in PACKAGES
            resumed = False
            if code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
                resumed = id(frame) in self.generators  # a resumption is not a new entry
                self.generators[id(frame)] = frame
            if not self.active and f"{module}:{code.co_name}" == self.start:
                self.active = len(self.stack) + 1
            border = False
            if self.active and code in self.watch and _called_from_project(frame):
                self.watched[self.watch[code]] += 1
            if self.active and not self.imports and ours and not resumed:
                below = self._project_below()
                self.functions[f"{module}.{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}"] += 1  # noqa: E501
                if below != module:
                    border = True
                    self.entries[module] += 1
                    self.edges[(below or "-", module)] += 1
            self.stack.append((module if ours else None, border))
        elif event == "return" and self.stack:
            module, border = self.stack.pop()
            if module is None and self.imports and frame.f_code.co_name == "<module>":
                self.imports -= 1
            if border:
                self.returns += 1
            if self.active and len(self.stack) < self.active:
                self.active = 0


def main(argv: list[str] | None = None) -> int:
    """Run ``bete dfpt run`` under the counter and print the counts."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pseudos", default=None,
                   help="pseudopotential family of Al (default: pslibrary's Al file, shipped "
                        "in tests/data/pseudo)")
    p.add_argument("--edges", action="store_true", help="also list the module edges")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pseudos = args.pseudos or str(REPO / "tests/data/pseudo/pslibrary-1.0.0-pbe-us-Al")

    from launchers.cli import main as bete
    from tests.workflows.qe.mock_qe import FakeQE
    from workflows.qe import run as qe_run
    from workflows.qe import sets

    qe_run.run_qe = FakeQE()  # type: ignore[assignment]
    watched = {sets.ElphInputGenerator.get_input_set.__code__: "input sets built",
               sets.ElphInputGenerator.__init__.__code__: "generators constructed"}
    with tempfile.TemporaryDirectory() as tmp:
        cif = Path(tmp) / "Al.cif"
        cif.write_text(AL_CIF)
        os.environ.update(BETE_STORE=f"{tmp}/store", BETE_SCRATCH_DIR=f"{tmp}/scratch",
                          BETE_CONFIG_FILE=f"{tmp}/settings.yaml")
        counter = PathCounter("launchers.cli.dfpt:run", watched)
        sys.setprofile(counter)
        try:
            rc = bete(["dfpt", "run", str(cif), "--pseudos", pseudos, "--override", COARSE,
                       "--format", "json"])
        finally:
            sys.setprofile(None)
    if rc:
        raise SystemExit(f"bete dfpt run failed (exit {rc})")
    print(f"modules_visited {len(counter.entries)}")
    print(f"module_entries {sum(counter.entries.values())}")
    print(f"module_returns {counter.returns}")
    print(f"project_function_calls {sum(counter.functions.values())}")
    for key in watched.values():
        print(f"{key.replace(' ', '_')} {counter.watched[key]}")
    print()
    print(f"{'module':<40}{'entries':>8}")
    for module, n in sorted(counter.entries.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{module:<40}{n:>8}")
    if args.edges:
        print()
        for (a, b), n in sorted(counter.edges.items()):
            print(f"{a} -> {b}: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

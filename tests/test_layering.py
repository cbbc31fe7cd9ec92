"""The package layering of docs/dev/architecture.md, checked on every import statement of the tree.

Imports are read with :mod:`ast` at every level (inside functions and ``try`` blocks
too), so an import deferred into a function to dodge a cycle still counts.
Allowed: ``launchers`` → ``workflows`` → (``stores``, ``betenet_model``); ``stores``
and ``betenet_model`` import no other project package; no package has a cycle among
its modules, and the parts of ``workflows`` (``common``, ``qe``, ``mlip``, ``ml``,
``screening``) import each other without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("betenet_model", "stores", "workflows", "launchers")
ALLOWED = {
    "betenet_model": set(),
    "stores": set(),
    "workflows": {"stores", "betenet_model"},
    "launchers": {"workflows", "stores", "betenet_model"},
}
"""Project packages each package may import (besides itself)."""
PROJECT = {*PACKAGES, "benchmarks", "scripts", "tests"}


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of a file under ``root`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """(absolute module name, line) of every import in the file, at any nesting level."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield module, node.lineno
            for alias in node.names:  # `from launchers.cli import dfpt` imports a module
                yield f"{module}.{alias.name}", node.lineno


def project_files(root: Path) -> Iterator[Path]:
    """Every Python file of the four packages."""
    for package in PACKAGES:
        yield from sorted((root / package).rglob("*.py"))


def layering_violations(root: Path) -> list[str]:
    """``file:line imports X`` for every import a package may not make."""
    bad = {}
    for path in project_files(root):
        own = path.relative_to(root).parts[0]
        for module, line in imported_modules(path, root):
            top = module.split(".")[0]
            where = f"{path.relative_to(root)}:{line}"
            if top in PROJECT and top != own and top not in ALLOWED[own] and where not in bad:
                bad[where] = f"{where} imports {module}"  # the first name: the module
    return sorted(bad.values())


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Cycles of a directed graph (node → successors), each found once, as node lists."""
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name)
    return cycles


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """Cycles among the modules of ``package`` (each cycle once, as a module list)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph = {name: sorted({m for m, _ in imported_modules(path, root) if m in files and m != name
                           and not name.startswith(m + ".")})
             for name, path in files.items()}
    return find_cycles(graph)


def subpackage_cycles(root: Path, package: str) -> list[list[str]]:
    """Cycles between the parts of ``package``: its sub-packages and top-level modules.

    ``workflows.qe`` importing ``workflows.common`` and back is a cycle even when no two
    modules import each other.
    """
    def part(module: str) -> str | None:
        names = module.split(".")
        if names[0] != package or len(names) < 2:
            return None
        sub = root / package / names[1]
        return f"{package}.{names[1]}" if sub.is_dir() or sub.with_suffix(".py").is_file() \
            else None

    graph: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        source = part(module_name(path, root))
        if source is None:
            continue
        targets = {part(m) for m, _ in imported_modules(path, root)}
        graph.setdefault(source, set()).update(t for t in targets if t and t != source)
    for targets in list(graph.values()):
        for target in targets:
            graph.setdefault(target, set())
    return find_cycles({name: sorted(targets) for name, targets in graph.items()})


def test_packages_import_only_downwards():
    assert layering_violations(ROOT) == []


def test_no_package_has_an_import_cycle():
    """Covers the ``launchers/cli`` modules (``cluster`` and ``dfpt`` imported each other)."""
    for package in PACKAGES:
        assert import_cycles(ROOT, package) == [], package


def test_no_cycle_between_the_parts_of_workflows():
    """``ml`` and ``mlip`` imported each other; ``structures.py`` and ``qe`` too."""
    assert subpackage_cycles(ROOT, "workflows") == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
    return tmp_path


def test_checker_finds_an_upward_import_inside_a_function(tmp_path):
    root = _tree(tmp_path, {
        "stores/__init__.py": "",
        "stores/config.py": "def f():\n    from workflows.settings import get\n    return get\n",
        "betenet_model/__init__.py": "from stores import config\n",
        "workflows/__init__.py": "",
        "workflows/jobs.py": "import launchers.cli\n",
    })
    assert layering_violations(root) == [
        "betenet_model/__init__.py:1 imports stores",
        "stores/config.py:2 imports workflows.settings",
        "workflows/jobs.py:1 imports launchers.cli",
    ]


def test_checker_finds_a_cycle_through_a_deferred_import(tmp_path):
    root = _tree(tmp_path, {
        "launchers/__init__.py": "",
        "launchers/cli/__init__.py": "",
        "launchers/cli/dfpt.py": "from launchers.cli.cluster import add_submit_parser\n",
        "launchers/cli/cluster.py": "def f():\n    from launchers.cli import dfpt\n",
    })
    cycles = import_cycles(root, "launchers")
    assert len(cycles) == 1 and set(cycles[0]) == {"launchers.cli.dfpt", "launchers.cli.cluster"}


def test_checker_finds_a_cycle_between_sub_packages(tmp_path):
    root = _tree(tmp_path, {
        "workflows/__init__.py": "",
        "workflows/ml/__init__.py": "",
        "workflows/ml/data.py": "from workflows.mlip.flows import Maker\n",
        "workflows/mlip/__init__.py": "",
        "workflows/mlip/flows.py": "def f():\n    from workflows.ml.grid import grid_values\n",
        "workflows/ml/grid.py": "",
        "workflows/local.py": "from workflows.ml import data\n",
    })
    cycles = subpackage_cycles(root, "workflows")
    assert len(cycles) == 1 and set(cycles[0]) == {"workflows.ml", "workflows.mlip"}
    assert import_cycles(root, "workflows") == []  # no two modules import each other

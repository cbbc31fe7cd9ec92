"""No function of the four packages is longer than 100 lines (``ast``: ``def`` to last line).

``python tests/test_function_length.py`` lists every function over the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workflows", "stores", "launchers", "betenet_model")
MAX_LINES = 100
KNOWN: set[str] = set()


def _functions(node: ast.AST, prefix: str = ""):
    """(qualified name, lines) of every function below ``node``, methods and nested ones too."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{child.name}", child.end_lineno - child.lineno + 1
            yield from _functions(child, f"{prefix}{child.name}.")


def long_functions(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """``file::qualified name`` → lines, for every function (or method) over ``limit`` lines."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for name, lines in _functions(ast.parse(path.read_text())):
                if lines > limit:
                    found[f"{rel}::{name}"] = lines
    return found


def test_no_function_over_100_lines():
    assert set(long_functions(ROOT)) <= KNOWN


def test_the_count_sees_methods_and_nested_functions(tmp_path):
    (tmp_path / "stores").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(99))
    (tmp_path / "stores" / "m.py").write_text(
        f"class C:\n  def long(self):\n{body}\n    return x0\n"
        f"def outer():\n  def inner():\n{body}\n    return 1\n  return inner\n")
    assert long_functions(tmp_path) == {"stores/m.py::C.long": 101,
                                        "stores/m.py::outer": 103,
                                        "stores/m.py::outer.inner": 101}


if __name__ == "__main__":
    for name, lines in sorted(long_functions(ROOT).items(), key=lambda kv: -kv[1]):
        print(f"{lines:5d}  {name}{'  (known)' if name in KNOWN else ''}")

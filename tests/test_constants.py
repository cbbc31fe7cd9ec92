"""Each analysis default has one home (``stores.constants``); the model package's copy of μ*
equals it.  An ``ast`` scan finds numeric literals given to a μ*, stability-threshold or
reference-broadening name anywhere in the four packages (defaults, fields, keywords,
``--mu-star``-style options)."""

from __future__ import annotations

import ast
from pathlib import Path

from betenet_model.tc import DEFAULT_MU_STAR as TORCH_MU_STAR
from betenet_model.train_config import DEFAULT_MU_STAR as MODEL_MU_STAR
from betenet_model.train_config import TrainConfig
from betenet_model.variants import DEFAULT_VARIANT, VARIANTS
from stores import constants, datasets

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("betenet_model", "stores", "workflows", "launchers")
NAMES = ("mu_star", "stability_threshold", "reference_sigma")
HOMES = {"stores/constants.py", "betenet_model/train_config.py"}
PINNED = {("stores/protocol.py", "mu_star"), ("stores/protocol.py", "reference_sigma_ry")}
"""The fast-v1 identity and documents from before μ* was recorded: facts about past data."""


def _named(name: str) -> str | None:
    low = name.lower().replace("-", "_").lstrip("_")
    if low.endswith("_index"):  # FAST_V1_REFERENCE_SIGMA_INDEX: a position, not a value
        return None
    return next((n for n in NAMES if n in low), None)


def _number(node: ast.AST | None) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def literal_defaults(root: Path) -> list[str]:
    """``file:line name`` of every numeric literal bound to a μ*/threshold/σ name."""
    found = []
    for path in (p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))):
        rel = str(path.relative_to(root))
        pairs: list[tuple[str, ast.AST | None, int]] = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                positional = args.posonlyargs + args.args
                for arg, default in zip(positional[::-1], args.defaults[::-1], strict=False):
                    pairs.append((arg.arg, default, node.lineno))
                for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                    pairs.append((arg.arg, default, node.lineno))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                value = node.value
                if isinstance(value, ast.Call) and value.args:  # Field(0.10, ...)
                    value = value.args[0]
                pairs.append((node.target.id, value, node.lineno))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        pairs.append((target.id, node.value, node.lineno))
            elif isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg:
                        pairs.append((kw.arg, kw.value, node.lineno))
                flags = [a.value for a in node.args if isinstance(a, ast.Constant)
                         and isinstance(a.value, str) and a.value.startswith("--")]
                default = next((kw.value for kw in node.keywords if kw.arg == "default"), None)
                for flag in flags:  # p.add_argument("--mu-star", default=0.10)
                    pairs.append((flag, default, node.lineno))
        for name, value, line in pairs:
            kind = _named(name)
            if kind and _number(value) and rel not in HOMES and (rel, name.lower()) not in PINNED:
                found.append(f"{rel}:{line} {name}")
    return sorted(set(found))


def test_constants_have_one_home():
    assert literal_defaults(ROOT) == []


def test_model_package_mu_star_is_the_projects():
    assert MODEL_MU_STAR == TORCH_MU_STAR == constants.DEFAULT_MU_STAR
    assert TrainConfig().mu_star == constants.DEFAULT_MU_STAR


def test_scan_finds_literals(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "workflows" / "x.py").write_text(
        "def f(mu_star=0.1):\n    pass\n"
        "class C:\n    stability_threshold_meV: float = Field(-0.5, description='')\n"
        "p.add_argument('--mu-star', type=float, default=0.10)\n"
        "g(reference_sigma_Ry=0.02)\n")
    assert literal_defaults(tmp_path) == [
        "workflows/x.py:1 mu_star", "workflows/x.py:4 stability_threshold_meV",
        "workflows/x.py:5 --mu-star", "workflows/x.py:6 reference_sigma_Ry"]


VARIANT_HOMES = {"betenet_model/variants.py", "stores/constants.py", "stores/datasets.py"}
"""The registry, and the two copies ``stores`` keeps because it may not import it."""


def variant_literals(root: Path) -> list[str]:
    """``file:line 'name'`` of every string literal naming a variant or a site-DOS source
    outside :data:`VARIANT_HOMES`, docstrings left out."""
    names = set(VARIANTS) | {v.site_dos for v in VARIANTS.values() if v.site_dos}
    found = []
    for path in (p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))):
        rel = str(path.relative_to(root))
        if rel in VARIANT_HOMES:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                           ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        found += [f"{rel}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value.lower() in names and id(node) not in docstrings]
    return sorted(found)


def test_variant_names_come_from_the_registry():
    """No ``"cso"``/``"mlip"``/``"full"`` beside the registry; the stores' copies equal it."""
    assert variant_literals(ROOT) == []
    assert constants.DEFAULT_VARIANT == DEFAULT_VARIANT
    assert set(datasets.SITE_DOS_SOURCES) == {v.site_dos for v in VARIANTS.values()} - {
        None, "mlip"}
    assert (datasets.SITE_DOS_FULL, datasets.SITE_DOS_COARSE) == (
        VARIANTS["fpd"].site_dos, VARIANTS["cpd"].site_dos)


def test_variant_scan_finds_literals(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "stores" / "x.py").write_text(
        '"""cso"""\ndef f(m):\n    """mlip"""\n    return m.get("variant", "cso") == "mlip"\n')
    assert variant_literals(tmp_path) == ["stores/x.py:4 'cso'", "stores/x.py:4 'mlip'"]

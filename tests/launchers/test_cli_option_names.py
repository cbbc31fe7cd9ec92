"""Every option a message names exists on the command that prints it (issue 26).

A user told to "raise the limit (--max-atoms)" must be able to type it.  The project's
source is read with ``ast``: every string in a function (error messages, progress and log
lines; docstrings left out) that names an ``--option`` is found, and a static call graph
from each command's handler tells which commands can print it.  Each of those commands'
parsers must accept the option.  An option inside a backticked ```bete CMD ...``` example
belongs to CMD instead, which must exist and accept it.

The call graph resolves plain calls through imports (module level and inside functions),
``Class(...)`` to its ``__init__``/``__post_init__``, ``obj.method`` through the parameter
annotation or the assignment that made ``obj`` (``self`` included), and otherwise to every
project method of that name unless the name is a method of a builtin container (``get``,
``update``, ...), which would connect everything.  A function named without being called
(a callback) counts as called.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import re
from collections import defaultdict
from pathlib import Path

from launchers.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("launchers", "workflows", "stores", "betenet_model")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
EXAMPLE = re.compile(r"`(?:bete|\{\})\s+([^`]*)`")
ALWAYS = {"--help"}
#: Messages a command catches and replaces before a user sees them, which a static call
#: graph cannot tell: (function, option) → commands.  Each entry names where it is caught
#: and has a test of its own.
CAUGHT = {
    # workflows.screening.active_learning.initial_records catches MixedProtocolsError
    # (tests/workflows/screening/test_verification_check.py, mixed initial data)
    ("stores.datasets.select_protocol", "--protocol-fingerprint"): {"al run", "demo"},
}
COMMON_METHODS = {name for kind in (dict, list, str, set, bytes, object, Path)
                  for name in dir(kind)} | {"connect", "close", "query", "count", "read",
                                            "write"}


def commands() -> dict[str, tuple[argparse.ArgumentParser, object]]:
    """``"dfpt run"`` → (its parser, its handler function)."""
    found: dict[str, tuple[argparse.ArgumentParser, object]] = {}

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and parser.get_default("func") is not None:
            found[" ".join(path)] = (parser, parser.get_default("func"))
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, [*path, name])

    walk(build_parser(), [])
    return found


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(nodes: list[ast.stmt] | list[ast.AST], module: str, package: bool) -> dict:
    """Alias → qualified name of the import statements among ``nodes``."""
    out = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[:len(module.split(".")) - node.level
                                              + (1 if package else 0)]
                base = ".".join([*parent, *([base] if base else [])])
            for a in node.names:
                out[a.asname or a.name] = f"{base}.{a.name}"
    return out


class Project:
    """Functions, methods, classes and their messages and calls, of the project's packages."""

    def __init__(self) -> None:
        self.functions: dict[str, ast.AST] = {}        # "mod.func" / "mod.Class.meth"
        self.owner: dict[str, str] = {}                # function → its module
        self.klass: dict[str, str] = {}                # method → "mod.Class"
        self.bases: dict[str, list[str]] = {}          # "mod.Class" → base qualified names
        self.methods: dict[str, list[str]] = defaultdict(list)   # "meth" → methods
        self.aliases: dict[str, dict[str, str]] = {}   # module → alias → qualified
        self.constants: dict[str, ast.AST] = {}        # "mod.NAME" → module-level value
        self.returns: dict[str, str] = {}              # function → annotation text
        for path in sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")):
            self._read(path)

    def _read(self, path: Path) -> None:
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        self.aliases[module] = _imports(list(tree.body), module, path.name == "__init__.py")
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self._function(f"{module}.{node.name}", node, module)
            elif isinstance(node, ast.ClassDef):
                cls = f"{module}.{node.name}"
                self.bases[cls] = [ast.unparse(b) for b in node.bases]
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        name = f"{cls}.{item.name}"
                        self._function(name, item, module)
                        self.klass[name] = cls
                        self.methods[item.name].append(name)
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        self.constants[f"{module}.{t.id}"] = node.value

    def _function(self, name: str, node: ast.AST, module: str) -> None:
        self.functions[name] = node
        self.owner[name] = module
        if getattr(node, "returns", None) is not None:
            self.returns[name] = ast.unparse(node.returns)

    # ------------------------------------------------------------------ resolution
    def _qualify(self, text: str, module: str, local: dict[str, str]) -> str:
        head, _, rest = text.partition(".")
        scope = {**self.aliases[module], **local}
        if head in scope:
            return scope[head] + (f".{rest}" if rest else "")
        return f"{module}.{text}"

    def _targets(self, qualified: str) -> list[str]:
        """Project functions a qualified name stands for (a class: its constructors)."""
        if qualified in self.functions:
            return [qualified]
        if qualified in self.bases:
            return [f for f in (f"{qualified}.__init__", f"{qualified}.__post_init__")
                    if f in self.functions]
        module, _, name = qualified.rpartition(".")   # re-exported from a package __init__
        target = self.aliases.get(module, {}).get(name)
        return self._targets(target) if target and target != qualified else []

    def _class_of(self, annotation: str, module: str, local: dict[str, str]) -> str | None:
        for part in re.split(r"[\[\]|, ]+", annotation.strip("'\"")):
            if part and part != "None":
                cls = self._qualify(part, module, local)
                if cls in self.bases:
                    return cls
        return None

    def _method(self, cls: str, name: str, seen: frozenset = frozenset()) -> list[str]:
        if f"{cls}.{name}" in self.functions:
            return [f"{cls}.{name}"]
        module = cls.rpartition(".")[0]
        out = []
        for base in self.bases.get(cls, []):
            qualified = self._qualify(base, module, {})
            if qualified in self.bases and qualified not in seen:
                out += self._method(qualified, name, seen | {cls})
        return out

    def calls(self, name: str) -> set[str]:
        """Project functions ``name`` calls or names."""
        node = self.functions[name]
        module = self.owner[name]
        local = _imports(list(ast.walk(node)), module, False)
        types: dict[str, str] = {}
        if name in self.klass:
            types["self"] = types["cls"] = self.klass[name]
        for arg in [*node.args.args, *node.args.kwonlyargs]:
            if arg.annotation is not None and (
                    cls := self._class_of(ast.unparse(arg.annotation), module, local)):
                types[arg.arg] = cls
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                made = self._made_by(sub.value.func, module, local)
                for t in sub.targets:
                    if isinstance(t, ast.Name) and made:
                        types[t.id] = made
        out: set[str] = set()
        handled: set[int] = set()
        for sub in ast.walk(node):   # dispatch on the type of a known argument
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.args:
                first = sub.args[0]
                kind = (types.get(first.id) if isinstance(first, ast.Name) else
                        self._made_by(first.func, module, local)
                        if isinstance(first, ast.Call) else None)
                if kind is None:
                    continue
                for target in self._targets(self._qualify(sub.func.id, module, local)):
                    branch = self.dispatch(target).get(kind)
                    if branch is not None:
                        out.update(branch)
                        handled.add(id(sub.func))
        for sub in ast.walk(node):
            if id(sub) in handled:
                continue
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                out.update(self._targets(self._qualify(sub.id, module, local)))
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Load):
                out.update(self._attribute(sub, module, local, types))
        out.discard(name)
        return out

    def dispatch(self, name: str) -> dict[str, set[str]]:
        """Class → callees of a function made of ``if isinstance(arg, Class): return f(arg)``
        branches on its first argument (empty for any other function)."""
        node = self.functions[name]
        module = self.owner[name]
        if not node.args.args:
            return {}
        first = node.args.args[0].arg
        body = [b for b in node.body if not (isinstance(b, ast.Expr)
                                            and isinstance(b.value, ast.Constant))]
        out: dict[str, set[str]] = {}
        for stmt in body:
            test = stmt.test if isinstance(stmt, ast.If) else None
            if (isinstance(test, ast.Call) and ast.unparse(test.func) == "isinstance"
                    and ast.unparse(test.args[0]) == first and not stmt.orelse):
                cls = self._qualify(ast.unparse(test.args[1]), module, {})
                out[cls] = {t for sub in ast.walk(ast.Module(stmt.body, []))
                            if isinstance(sub, ast.Name)
                            for t in self._targets(self._qualify(sub.id, module, {}))}
            elif not isinstance(stmt, ast.Raise):
                return {}
        return out

    def _made_by(self, func: ast.AST, module: str, local: dict[str, str]) -> str | None:
        """The project class a call's result is an instance of, when it can be told."""
        text = ast.unparse(func)
        qualified = self._qualify(text, module, local)
        if qualified in self.bases:
            return qualified
        if qualified in self.returns:
            return self._class_of(self.returns[qualified], self.owner[qualified], {})
        return None

    def _attribute(self, node: ast.Attribute, module: str, local: dict[str, str],
                   types: dict[str, str]) -> list[str]:
        base = node.value
        if isinstance(base, ast.Name) and base.id in types:
            return self._method(types[base.id], node.attr)
        dotted = ast.unparse(node)
        if isinstance(base, ast.Name | ast.Attribute):
            direct = self._targets(self._qualify(dotted, module, local))
            if direct:
                return direct
        if node.attr in COMMON_METHODS or node.attr.startswith("__"):
            return []
        return list(self.methods.get(node.attr, []))

    # ------------------------------------------------------------------ messages
    def messages(self, name: str) -> list[str]:
        """Strings of a function (f-strings with ``{}`` for values), docstrings left out."""
        node = self.functions[name]
        module = self.owner[name]
        docs = {id(n.body[0].value) for n in ast.walk(node)
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.body and isinstance(n.body[0], ast.Expr)
                and isinstance(n.body[0].value, ast.Constant)}
        docs |= {id(v) for n in ast.walk(node) if isinstance(n, ast.JoinedStr)
                 for v in n.values}   # the pieces of an f-string: read as one string below
        out = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and f"{module}.{sub.id}" in self.constants:
                out += _strings(self.constants[f"{module}.{sub.id}"])
        for sub in ast.walk(node):
            if id(sub) in docs:
                continue
            if isinstance(sub, ast.JoinedStr):
                out.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                                   for v in sub.values))
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                out.append(sub.value)
        return out


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def reachable(project: Project, start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for callee in project.calls(todo.pop()):
            if callee not in seen:
                seen.add(callee)
                todo.append(callee)
    return seen


def named_options(text: str, command_names: set[str]) -> list[tuple[str | None, str]]:
    """(command it belongs to, None = the one printing it; option) of each ``--option``."""
    out = []
    examples = []
    for match in EXAMPLE.finditer(text):
        words = match.group(1).split()
        command = next((" ".join(words[:n]) for n in (3, 2, 1)
                        if " ".join(words[:n]) in command_names), None)
        examples.append((match.start(), match.end(), command))
    for match in OPTION.finditer(text):
        owner = next((c for s, e, c in examples if s <= match.start() < e and c), None)
        out.append((owner, match.group(0)))
    return out


def builtin_name(name: str) -> bool:
    return hasattr(builtins, name)


def test_every_option_a_message_names_exists_on_its_command():
    project = Project()
    cmds = commands()
    accepts = {name: options_of(parser) | ALWAYS for name, (parser, _f) in cmds.items()}
    names = set(cmds) | {n.split()[0] for n in cmds}
    wrong = []
    for command, (_parser, handler) in sorted(cmds.items()):
        start = f"{handler.__module__}.{handler.__qualname__}"
        assert start in project.functions, start
        for func in sorted(reachable(project, start)):
            for text in project.messages(func):
                for owner, option in named_options(text, names):
                    target = owner or command
                    if owner is not None and owner not in accepts:
                        continue   # "bete dfpt ..." with a sub-command left out: not checked
                    if command in CAUGHT.get((func, option), ()):
                        continue
                    if option not in accepts[target]:
                        wrong.append(f"`bete {target}` has no {option}: {func}: {text!r}")
    assert sorted(set(wrong)) == []


def test_the_graph_finds_the_atom_limit_message_from_dfpt_run():
    """The check above can fail: ``dfpt run`` reaches the atom-limit message (through the
    flow maker's input set), and an option missing from a parser is reported."""
    project = Project()
    parser, handler = commands()["dfpt run"]
    reached = reachable(project, f"{handler.__module__}.{handler.__qualname__}")
    assert "workflows.qe.structures.check_atom_limit" in reached
    texts = [t for f in reached for t in project.messages(f) if "--max-atoms" in t]
    assert texts and "--max-atoms" in options_of(parser)
    assert named_options("raise it (`bete train --members 2`, --nope)", {"train"}) == [
        ("train", "--members"), (None, "--nope")]

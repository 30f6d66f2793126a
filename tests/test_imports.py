"""The package's import graph has no cycle, and every module imports on its own in a fresh interpreter.

The graph counts every ``import`` statement of a module, at module level or inside functions (a function-level import
that closes a cycle is still a cycle, only deferred). An edge goes to the most specific module named: ``from zoo.data
import camera`` is an edge to ``zoo.data.camera``. Importing a submodule from outside its package also runs the
package's ``__init__``, so such an import adds an edge to the package too (``zoo.losses.x`` importing
``zoo.models.y`` depends on ``zoo.models``, which registers every model). The root package ``zoo`` is the public
facade that imports its layers, and is left out.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zoo"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _named_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict) -> set[str]:
    """The modules one import statement names: ``import a.b`` → a.b; ``from a import b`` → a.b if that is a module,
    else a (b is a name defined in a)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative import
            parent = module.split(".") if is_package else module.split(".")[:-1]
            parent = parent[: len(parent) - node.level + 1]
            base = ".".join(parent + ([node.module] if node.module else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = set()
    for name in names:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in modules:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """{module: the zoo modules it imports}, as described in the module docstring."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "zoo":
            continue
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _named_modules(node, name, path.name == "__init__.py", modules):
                    edges.add(target)
                    package = target.rsplit(".", 1)[0]
                    while package != "zoo" and not (name == package or name.startswith(package + ".")):
                        edges.add(package)  # importing from outside a package runs its __init__
                        package = package.rsplit(".", 1)[0]
        graph[name] = edges - {"zoo", name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_package():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check can fail: a deferred import back from the registry into the models is reported."""
    graph = {k: set(v) for k, v in import_graph().items()}
    graph["zoo.registry"].add("zoo.models")
    assert any({"zoo.registry", "zoo.models"} <= set(c) for c in cycles(graph))


def test_the_registry_imports_no_model():
    assert not {t for t in import_graph()["zoo.registry"] if t.startswith("zoo.models")}


@pytest.mark.parametrize("order_seed", [0, 1, 2])
def test_every_module_imports_first_in_a_fresh_interpreter(order_seed):
    """Each module in a random order, each as the first zoo import of its own interpreter (one process per order:
    the modules are imported one after another, the first one from a clean state, and an import error names it)."""
    names = sorted(module_names())
    random.Random(order_seed).shuffle(names)
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    first = subprocess.run([sys.executable, "-c", script, names[0]], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, f"{names[0]} does not import first: {first.stderr[-600:]}"
    rest = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=120)
    assert rest.returncode == 0, rest.stderr[-600:]

"""No import cycle inside the package.

Every module under ``src/napari_neurorestore`` is parsed with :mod:`ast`; each ``import``
and ``from ... import`` of the package (at module level and inside functions, relative ones
resolved) is an edge from the importing module to the imported one. ``from pkg import name``
is an edge to ``pkg.name`` when that is a module, else to ``pkg``. Imports under
``if TYPE_CHECKING:`` are not run and are left out.

The rule: a module imports only modules below it. A package's ``__init__`` may re-export
its submodules; a submodule then must not import its package back (import the sibling
module that defines the name instead). Shared things (exceptions, small helpers) move down
into small modules (e.g. ``core/errors.py``) rather than being imported "on use".
"""

from __future__ import annotations

import ast
from pathlib import Path

import napari_neurorestore

ROOT = Path(napari_neurorestore.__file__).parent
PKG = "napari_neurorestore"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _target(name: str, mods: dict[str, Path]) -> str | None:
    """``name`` or its nearest enclosing module of the package."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names
                                  if f"{base}.{a.name}" in mods]
                if len(names) > 1 and all(f"{base}.{a.name}" in mods for a in node.names):
                    names = names[1:]  # only submodules: no edge to the package itself
            else:
                continue
            for name in names:
                if name == PKG or name.startswith(PKG + "."):
                    t = _target(name, mods)
                    if t and t != mod:
                        graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_graph_sees_the_package():
    g = import_graph()
    assert f"{PKG}.core.io" in g[f"{PKG}.core.methods.denoise.spec"]
    assert f"{PKG}.core.engine" in g[f"{PKG}.api"]  # a function-level import
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)

"""No import circle and no arrow running back up inside the package.

Every module under ``src/napari_neurorestore`` is parsed with :mod:`ast`; each ``import``
and ``from ... import`` of the package is an edge from the importing module to the imported
one: at module level and inside functions, relative ones resolved, **type-only ones (under
``if TYPE_CHECKING:``) and re-exports included** (an edge is an edge whether it runs or
not). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg``. A method loaded by name from the registry (``"module:attribute"`` strings) is no
edge: that is how the registry stays light.

The rules (the layers, from the bottom up):

0. **shared** -- ``core/*`` modules that know no method (io, errors, params, progress,
   models, nets, train, metrics, ...), ``core/traces/`` and ``_version.py``.
1. **methods** -- ``core/methods/`` (the registry ``__init__`` and ``base.py``) and one
   package per method, ``core/methods/<name>/``.
2. **runs** -- what works through the registry: ``core/engine.py``, ``steps.py``,
   ``cost.py``, ``live.py``, ``report.py``, ``distributed.py`` and ``core/trust/``.
3. **faces** -- ``api/``, ``cli/``, ``_widgets/`` and the napari entry points
   (``_reader``, ``_writer``, ``_sample_data``, ``_display``, the package itself).

* An arrow goes to the same layer or a lower one: core never imports a face, a method
  never imports a run, the shared modules import no method (not even the registry).
* A method package imports only itself, ``core/methods/base.py`` and the shared layer: not
  another method's package, not the registry (it is found *by* the registry). A method
  that chains another as a stage (sparse's first stage is the denoiser: the two stages of
  the fiberscopy paper) loads it by name at run time, as the registry does
  (``sparse/chain.py``): no edge, and the denoiser knows nothing of it.
* Inside core nothing else imports a method package: the runs reach a method through the
  registry (``get(name)``, ``Method.impl()``). A face may import a method's light modules
  (its params dataclass, its figures' text) but none that imports torch at module level.
* The registry and ``base.py`` import no method package (methods are loaded by name).
* ``core/traces/`` and ``core/trust/`` import no method package.
* No circle, counting every edge above. A package's ``__init__`` may re-export its
  submodules; a submodule then must not import its package back (import the sibling
  module that defines the name instead).
"""

from __future__ import annotations

import ast
from pathlib import Path

import napari_neurorestore

ROOT = Path(napari_neurorestore.__file__).parent
PKG = "napari_neurorestore"
CORE = f"{PKG}.core"
METHODS = f"{CORE}.methods"
RUNS = {f"{CORE}.{m}" for m in ("engine", "steps", "cost", "live", "report", "distributed")}


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


def _under(mod: str, pkg: str) -> bool:
    return mod == pkg or mod.startswith(pkg + ".")


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (every edge: runtime, function-level,
    type-only and re-exports)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
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
                if _under(name, PKG):
                    t = _target(name, mods)
                    if t and t != mod:
                        graph[mod].add(t)
    return graph


def method_package(mod: str) -> str | None:
    """The method package ``mod`` belongs to (``core.methods.<name>``), or None."""
    if not mod.startswith(METHODS + "."):
        return None
    first = mod[len(METHODS) + 1:].split(".")[0]
    return None if first == "base" else f"{METHODS}.{first}"


def _imports_torch(mod: str) -> bool:
    """Whether module ``mod`` imports torch at module level."""
    tree = ast.parse(_modules()[mod].read_text())
    return any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == "torch"
                                                 for a in n.names)
               or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "torch"
               for n in tree.body)


def layer(mod: str) -> int:
    if mod == f"{PKG}._version":
        return 0
    if not _under(mod, CORE):
        return 3  # faces
    if _under(mod, f"{CORE}.trust") or mod in RUNS:
        return 2
    if _under(mod, METHODS):
        return 1
    return 0


def broken_rules(graph: dict[str, set[str]]) -> list[str]:
    """Every edge that breaks a rule of the module docstring, as 'a -> b: why'."""
    out = []
    for a in sorted(graph):
        for b in sorted(graph[a]):
            pa, pb = method_package(a), method_package(b)
            why = None
            if layer(b) > layer(a):
                why = f"runs back up (layer {layer(a)} -> {layer(b)})"
            elif pa and b == METHODS:
                why = "a method imports the registry"
            elif pb and pa != pb and layer(a) < 3:
                why = "imports a method package from outside it"
            elif pb and layer(a) == 3 and _imports_torch(b):
                why = "a face imports a method's torch module (use Method.impl())"
            if why:
                out.append(f"{a} -> {b}: {why}")
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
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
    assert f"{CORE}.io" in g[f"{METHODS}.denoise.spec"]
    assert f"{CORE}.engine" in g[f"{PKG}.api._common"]  # a function-level import
    # a type-only import counts (tables.py names TraceResult for its annotations only)
    assert f"{CORE}.traces.fidelity" in g[f"{CORE}.traces.tables"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_rules_catch_what_they_say():
    den, spa = f"{METHODS}.denoise.spec", f"{METHODS}.sparse.spec"
    bad = {den: {spa, METHODS, f"{CORE}.engine"}, f"{CORE}.io": {f"{PKG}.cli.common"},
           f"{CORE}.trust.checks": {f"{METHODS}.denoise.heavy"}, spa: {f"{METHODS}.base"},
           METHODS: {den}, f"{PKG}.api": {den, f"{METHODS}.denoise.heavy"}}
    found = broken_rules(bad)
    assert len(found) == 7, found  # the api may import denoise.spec, not denoise.heavy
    assert all(spa not in f.split(" -> ")[0] for f in found)  # base: allowed


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_arrow_runs_back_up():
    assert broken_rules(import_graph()) == []


def test_every_method_is_one_package():
    from napari_neurorestore.core.methods import REGISTRY

    for name, ref in REGISTRY.items():
        module = ref.split(":")[0]
        assert method_package(module) == f"{METHODS}.{name}", ref
    flat = [m for m in _modules() if m.startswith(METHODS + ".") and m.count(".") == 3
            and m != f"{METHODS}.base" and (ROOT / "core" / "methods" / (m.rsplit(".")[-1]
                                                                       + ".py")).exists()]
    assert flat == [], f"method modules outside a method package: {flat}"

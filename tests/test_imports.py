"""No import cycles among the modules of ``scalecnn``.

The import graph is read from the source with :mod:`ast`: an edge ``a → b`` for
every import of the ``scalecnn`` module ``b`` that runs when ``a`` is imported
(module level, class bodies, ``try``/``if`` blocks; not function bodies, not
``if TYPE_CHECKING:`` blocks). ``from p import n`` points at ``p.n`` where that
is a module, else at ``p``. Importing ``p.q`` also runs the package ``p``'s
``__init__`` first, but that is not an edge: a package's ``__init__`` may import
its submodules, as long as none of them imports the package back.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "scalecnn"


def module_files(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name → source file, for every ``.py`` file of ``package``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return any(
        isinstance(n, ast.Name | ast.Attribute)
        and (getattr(n, "id", None) or getattr(n, "attr", None)) == "TYPE_CHECKING"
        for n in ast.walk(test)
    )


def _import_nodes(body: list[ast.stmt], lazy: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``body`` that run on import (all of them if ``lazy``)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif not lazy and isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse, lazy)
        else:  # class bodies, if/try/with/for blocks, except and match clauses
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _import_nodes([child], lazy)
                elif isinstance(getattr(child, "body", None), list):
                    yield from _import_nodes(child.body, lazy)


def imported_modules(name: str, path: Path, modules: set[str], lazy: bool = False) -> set[str]:
    """The modules of ``modules`` that ``name`` (source ``path``) imports.

    ``lazy=False``: only the imports that run when ``name`` is imported;
    ``lazy=True``: also those inside functions and ``if TYPE_CHECKING:`` blocks.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path)).body, lazy):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        found |= {t for t in targets if t in modules and t != name}
    return found


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    """Module → the ``scalecnn`` modules it imports (see :func:`imported_modules`)."""
    files = module_files()
    return {m: imported_modules(m, p, set(files), lazy) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one
    cycle through it, sorted; a self-import counts too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_one_cycle(graph, c) for c in components)


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A path ``a → … → a`` inside ``component`` (for a readable failure message)."""
    inside = set(component)
    start = component[0]
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & inside):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    return component  # pragma: no cover - a component always holds a cycle


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "scalecnn.models.registry" in graph["scalecnn.models.standard"]
    assert "scalecnn.models.standard" in graph["scalecnn.models"]
    assert "scalecnn.layers.siconv" in graph["scalecnn.layers"]


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among scalecnn modules:\n" + "\n".join(
        " → ".join(c) for c in found
    )


def test_the_registry_imports_no_model_module():
    """Not even lazily: models register themselves, :mod:`scalecnn.models` imports them."""
    files = module_files()
    imported = imported_modules(
        "scalecnn.models.registry", files["scalecnn.models.registry"], set(files), lazy=True
    )
    assert not {m for m in imported if m.startswith("scalecnn.models")}


@pytest.mark.parametrize(
    "graph,expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
        ({"a": {"a"}}, [["a", "a"]]),
    ],
)
def test_cycle_finder(graph, expected):
    assert cycles(graph) == expected

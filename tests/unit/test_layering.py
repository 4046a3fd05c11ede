"""Imports only go down (design.md s.2): no module imports one that imports it back, and the
layers below the engine never import the engine. Checked on the source, TYPE_CHECKING
imports included: a cycle hidden behind TYPE_CHECKING is still a cycle in the design."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "propylon"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                # The deepest module this import names (``from a.b import c``: a.b.c or a.b).
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("propylon") and target != name and target != "propylon":
                    found.add(target)
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# A package's own __init__ re-exporting its modules is not a dependency between layers.
def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }


def test_the_request_path_has_no_import_cycle() -> None:
    graph = _without_package_inits(_graph())
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


@pytest.mark.parametrize(
    ("layer", "never"),
    [
        (
            "propylon.http",
            ("propylon.engine", "propylon.plane", "propylon.stages", "propylon.upstream"),
        ),
        ("propylon.upstream", ("propylon.engine", "propylon.plane", "propylon.stages")),
        ("propylon.plane", ("propylon.engine", "propylon.upstream")),
        ("propylon.stages", ("propylon.engine", "propylon.upstream")),
        (
            "propylon.tracing",
            ("propylon.engine", "propylon.plane", "propylon.stages", "propylon.upstream"),
        ),
    ],
)
def test_lower_layers_never_import_upper_ones(layer: str, never: tuple[str, ...]) -> None:
    graph = _graph()
    offending = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name == layer or name.startswith(layer + ".")
        for target in targets
        if target.startswith(never)
    )
    assert offending == []

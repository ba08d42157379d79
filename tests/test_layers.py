"""The house's structure: imports flow one way through the layers and no modules import each other.

Layers, top to bottom: ``api`` > ``jobs`` > ``retrieval`` > ``ranker`` > ``indexer``. A module may import its
own package and the layers below it, never one above. And no set of modules imports each other in a cycle,
counting imports inside functions too, so a cycle cannot hide behind a function-level import. `make check`
runs this file as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("indexer", "ranker", "retrieval", "jobs", "api")  # bottom to top


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(first-party module imported, line) for every import statement in the file, wherever it is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                yield (child if child in known else node.module), node.lineno


def _graph() -> dict[str, dict[str, int]]:
    """Module -> {first-party module it imports: line}."""
    known = _modules()
    return {
        module: {name: line for name, line in _imports(path, known) if name in known and name != module}
        for module, path in known.items()
    }


def _cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_never_go_up_a_layer() -> None:
    rank = {package: level for level, package in enumerate(LAYERS)}
    upward = [
        f"{module} (line {line}) imports {target}"
        for module, targets in _graph().items()
        for target, line in targets.items()
        if rank[target.split(".")[0]] > rank[module.split(".")[0]]
    ]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in _cycles(_graph())]
    assert not cycles, f"modules that import each other: {cycles}"


def test_the_check_sees_a_cycle_and_an_upward_import() -> None:
    graph = {"indexer.a": {"indexer.b": 1}, "indexer.b": {"indexer.a": 3}, "indexer.c": {}}
    assert _cycles(graph) == [{"indexer.a", "indexer.b"}]
    assert _cycles({"indexer.a": {"indexer.c": 1}, "indexer.c": {}}) == []

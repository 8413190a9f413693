"""No import cycles between the package's modules (function-level imports count too).

A package's ``__init__`` that registers its blueprint's views is left out: importing a submodule always
imports its package first, which is not a cycle between two concerns.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stagebackup

ROOT = Path(stagebackup.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if path.name != "__init__.py":
            found[".".join(path.relative_to(ROOT.parent).with_suffix("").parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name.rsplit(".", 1)[0].split(".")
    targets = set()
    tree = ast.parse(path.read_text())
    # Imports under ``if TYPE_CHECKING:`` never run: they are annotations, not a dependency.
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for stmt in node.body for inner in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            prefix = ".".join([*base, *([node.module] if node.module else [])])
            targets.add(prefix)
            targets.update(f"{prefix}.{alias.name}" for alias in node.names)
    return (targets & known) - {name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_imports_itself_back():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert graph["stagebackup.restore.sources"] >= {"stagebackup.restore.tape_source"}  # the check sees edges
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))

"""The package's import graph, built from the source with ``ast``: no cycles, no cycle dodges.

Calls may recurse at run time (DML fires triggers that run guests that issue DML); imports must
not. Ports (the trigger ``Invoker``, the firing records wrapper, the current-execution
``ContextVar``) carry the recursion, so no module needs a ``TYPE_CHECKING`` import or an import
inside a function to break a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "host" / "circuit_host"
PACKAGE = "circuit_host"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE_DIR.rglob("*.py") if "_data" not in path.parts}


def imported_modules(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, ast.AST]]:
    """Every ``circuit_host`` module ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith(PACKAGE):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: {target for target, _ in imported_modules(name, path, known) if target in known}
        for name, path in found.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_and_nested_imports() -> None:
    edges = graph()
    assert "circuit_host.sandbox.session" in edges["circuit_host.sandbox.runtime"]
    assert "circuit_host.capabilities.records" in edges["circuit_host.abi.host_functions"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_hides_an_import_behind_type_checking(name: str) -> None:
    """A ``TYPE_CHECKING`` block exists only to dodge a cycle; the ports make it unnecessary."""
    tree = ast.parse(modules()[name].read_text())
    hidden = [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    ]
    assert not hidden, f"{name}: TYPE_CHECKING import at line(s) {hidden}"

"""Which ABI world a Python circuit is built against: 1.1.0 when its code uses ``jobs``, else 1.0.0.

componentize-py imports every interface of the world it builds for, used or not, so building every
circuit against 1.1.0 would give circuits that never enqueue a ``jobs`` import they do not need. The
world is chosen from the circuit's sources instead (a syntax tree, never running them): a file that
imports ``jobs`` from ``circuit_sdk`` (``from circuit_sdk import jobs``, ``from circuit_sdk.jobs
import enqueue``, ``import circuit_sdk.jobs``) or reads ``circuit_sdk.jobs`` makes it 1.1.0.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from ..abi.signatures import ABI_VERSION, PACKAGE

JOBS_VERSION = "1.1.0"  # the package version whose worlds import ``jobs`` (abi/circuit-1.1.wit)
SKIPPED_DIRS = frozenset({"build", "site-packages", "__pycache__"})


def circuit_sources(directory: Path) -> Iterator[Path]:
    """Every ``*.py`` of the circuit directory (its tests included), outside build output and hidden folders."""
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(directory).parts[:-1]
        if not any(part in SKIPPED_DIRS or part.startswith(".") for part in parts):
            yield path


def source_uses_jobs(source: str) -> bool:
    """Whether this module's code reaches ``circuit_sdk.jobs``; a file that does not parse uses nothing."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    nodes = list(ast.walk(tree))
    if any(_reaches_jobs(node) for node in nodes):
        return True
    star_import = any(
        isinstance(node, ast.ImportFrom)
        and node.level == 0
        and node.module == "circuit_sdk"
        and any(alias.name == "*" for alias in node.names)
        for node in nodes
    )
    return star_import and any(isinstance(node, ast.Name) and node.id == "jobs" for node in nodes)


def _reaches_jobs(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom) and node.level == 0:
        return node.module == "circuit_sdk.jobs" or (
            node.module == "circuit_sdk" and any(alias.name == "jobs" for alias in node.names)
        )
    if isinstance(node, ast.Import):
        return any(
            alias.name == "circuit_sdk.jobs" or alias.name.startswith("circuit_sdk.jobs.") for alias in node.names
        )
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "jobs"
        and isinstance(node.value, ast.Name)
        and node.value.id == "circuit_sdk"
    )


def uses_jobs(directory: Path) -> bool:
    """Whether any source file of the circuit directory uses ``circuit_sdk.jobs``."""
    return any(
        source_uses_jobs(path.read_text(encoding="utf-8", errors="replace")) for path in circuit_sources(directory)
    )


def abi_version_for(directory: Path) -> str:
    """The ABI version the circuit is built against (what its native tests run as)."""
    return JOBS_VERSION if uses_jobs(directory) else ABI_VERSION


def world_for(directory: Path, world: str) -> str:
    """``world`` (a 1.0.0 world's name, e.g. ``circuit``) as componentize-py's ``-w`` takes it: the
    1.1.0 world of that name, fully qualified, when the circuit uses jobs; the name unchanged otherwise."""
    return f"{PACKAGE}/{world}@{JOBS_VERSION}" if uses_jobs(directory) else world

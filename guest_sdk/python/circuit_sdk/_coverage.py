"""Line coverage of the circuit's own functions, shared by the sandbox and the native test run.

Both runs count the same lines: those that can run inside a function (module-level code runs
once, when the circuit is imported: at build time in the sandbox, before any test). The
sandbox measures them with ``sys.settrace``; the native run with coverage.py, restricted to
these lines, so the two figures are comparable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from types import CodeType, FrameType
from typing import Any


_OPTIMIZED = 0x0001  # inspect.CO_OPTIMIZED: a function's code, not a module's or class body's
_COMPREHENSIONS = frozenset({"<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>"})


def function_lines(source: str, filename: str) -> set[int]:
    """Every line that can run inside a function or method of ``source``, ``def`` lines excluded."""
    lines: set[int] = set()
    for code in _functions(compile(source, filename, "exec"), in_function=False):
        body = {line for _, _, line in code.co_lines() if line is not None}
        body.discard(code.co_firstlineno)  # the def (or first decorator) line runs at definition
        lines |= body
    return lines


def _functions(code: CodeType, in_function: bool) -> Iterator[CodeType]:
    """Code objects that run when called, not when the module or a class body is executed."""
    for const in code.co_consts:
        if not isinstance(const, CodeType):
            continue
        is_function = bool(const.co_flags & _OPTIMIZED)
        runs_later = is_function and (in_function or const.co_name not in _COMPREHENSIONS)
        if runs_later:
            yield const
        yield from _functions(const, in_function=runs_later)


class LineTracer:
    """Records the lines run in ``files`` (absolute path -> reported name) under ``sys.settrace``."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.hit: dict[str, set[int]] = {name: set() for name in files.values()}

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        name = self.files.get(frame.f_code.co_filename)
        if name is None:
            return None
        hits = self.hit[name]
        hits.add(frame.f_lineno)

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                hits.add(frame.f_lineno)
            return local

        return local

    def start(self) -> None:
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(None)


SKIPPED_DIRS = frozenset({"build", "site-packages", "tests", "__pycache__", "venv"})


def is_test_file(name: str) -> bool:
    return name == "tests.py" or name.startswith("test_") or name == "conftest.py"


def circuit_files(root: str) -> dict[str, str]:
    """The circuit's own ``*.py`` files under ``root`` (absolute path -> relative name, with ``/``):
    not its tests, build output, vendored dependencies or hidden folders. The native run and the
    sandbox both count exactly these."""
    root = os.path.abspath(root)
    files: dict[str, str] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".py") and not is_test_file(name):
                path = os.path.join(folder, name)
                files[path] = os.path.relpath(path, root).replace(os.sep, "/")
    return files

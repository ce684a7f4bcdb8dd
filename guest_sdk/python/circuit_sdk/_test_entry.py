"""The test component's entry point (world ``circuit-test-coverage``): the circuit, its tests,
``list-tests``/``run-test``, and the line coverage of the circuit's own files.

Everything that needs files happens here, at build time (componentize-py pre-initializes the
interpreter): importing the circuit and ``tests``, reading their sources for failure messages,
and finding the lines coverage counts. At run time the sandbox has no files at all.
"""

from __future__ import annotations

import os

import circuit
import tests  # the circuit's tests.py
import wit_world
from componentize_py_types import Err

from ._bindings import load_component_imports, load_testing_import
from ._coverage import LineTracer, circuit_files, function_lines
from ._describe import SOURCES, describe
from ._handler import handle_event
from .msgpack import packb

load_component_imports()
load_testing_import()

ROOT = os.path.dirname(os.path.abspath(circuit.__file__))
if os.path.basename(circuit.__file__) == "__init__.py":
    ROOT = os.path.dirname(ROOT)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as source:
        return source.read()


FILES = circuit_files(ROOT)
LINES = {name: sorted(function_lines(_read(path), path)) for path, name in FILES.items()}
for _path in [*FILES, os.path.abspath(tests.__file__)]:
    SOURCES[_path] = _read(_path).splitlines()
TESTS = [name for name, value in vars(tests).items() if name.startswith("test_") and callable(value)]
TRACER = LineTracer(FILES)


class WitWorld(wit_world.WitWorld):
    def handle(self, event: bytes) -> bytes:
        TRACER.start()
        try:
            return handle_event(event)
        finally:
            TRACER.stop()

    def list_tests(self) -> bytes:
        return packb(TESTS)

    def run_test(self, name: str) -> None:
        test = getattr(tests, name, None) if name in TESTS else None
        if test is None:
            raise Err(f"no test named {name!r}")
        TRACER.start()
        try:
            test()
        except Exception as exc:  # an assertion or an error the test did not expect: it failed
            raise Err(describe(exc)) from None
        finally:
            TRACER.stop()

    def coverage(self) -> bytes:
        return packb(
            {name: {"lines": lines, "hit": sorted(TRACER.hit[name] & set(lines))} for name, lines in LINES.items()}
        )

"""The component's entry point (componentize-py app module): imports the circuit, dispatches.

The circuit's code lives in ``circuit.py`` (or package ``circuit``) on the build path;
importing it registers its ``@trigger`` handlers at build time (componentize-py
pre-initializes the interpreter, so imports cost nothing per execution).
"""

from __future__ import annotations

import traceback

import circuit  # noqa: F401  # the user's circuit: registers handlers
import wit_world
from componentize_py_types import Err

from ._bindings import load_component_imports
from .msgpack import packb, unpackb
from .trigger import dispatch

load_component_imports()


class WitWorld(wit_world.WitWorld):
    def handle(self, event: bytes) -> bytes:
        try:
            return packb(dispatch(unpackb(event)))
        except Exception as exc:
            # No linecache here: reading source files would call (stubbed) WASI and trap.
            frames = list(traceback.walk_tb(exc.__traceback__))
            where = ""
            if frames:
                frame, lineno = frames[-1]
                where = f" (at {frame.f_code.co_filename.rsplit('/', 1)[-1]}:{lineno})"
            raise Err(f"{type(exc).__name__}: {exc}{where}") from None

"""The component's entry point (componentize-py app module): imports the circuit, dispatches.

The circuit's code lives in ``circuit.py`` (or package ``circuit``) on the build path;
importing it registers its ``@trigger`` handlers at build time (componentize-py
pre-initializes the interpreter, so imports cost nothing per execution).
"""

from __future__ import annotations

import circuit  # noqa: F401  # the user's circuit: registers handlers
import wit_world

from ._bindings import load_component_imports
from ._handler import handle_event

load_component_imports()


class WitWorld(wit_world.WitWorld):
    def handle(self, event: bytes) -> bytes:
        return handle_event(event)

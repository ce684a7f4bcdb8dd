"""Where the guest SDKs, the ABI's WIT files and the example circuits are at run time.

The repository's top-level folders (``SHIPPED``) are their source of truth. A wheel carries a copy
of them as package data in ``circuit_host/_data`` (made by ``setup.py`` at build time); an editable
install has no copy and reads the checkout itself. Nothing else in the host locates these files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# The repository folders a wheel ships under ``_data``, at the same relative paths.
SHIPPED = ("abi", "guest_sdk/zig", "guest_sdk/python", "examples")

# Build outputs and caches inside those folders that never ship.
NOT_SHIPPED = ("__pycache__", "*.pyc", "zig-cache", ".zig-cache", "zig-out", "build", "*.wasm", ".circuit")


def data_root() -> Path:
    """The folder holding ``SHIPPED``: the wheel's ``_data``, else the checkout's root."""
    packaged = files("circuit_host") / "_data"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2]  # host/circuit_host/resources.py -> checkout root


def zig_sdk_dir() -> Path:
    """The Zig guest SDK (``entry.zig``, ``circuit.zig``, ``testing.zig``, …)."""
    return data_root() / "guest_sdk" / "zig"


def python_sdk_dir() -> Path:
    """The import root holding the ``circuit_sdk`` package of the Python guest SDK."""
    return data_root() / "guest_sdk" / "python"


def wit_dir() -> Path:
    """The ABI's WIT package (``circuit.wit``, ``circuit-test.wit``), as componentize-py reads it."""
    return data_root() / "abi"


def example_dir(name: str) -> Path:
    """An example circuit's source folder, e.g. ``virtual_lpr``."""
    return data_root() / "examples" / name

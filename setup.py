"""Packaging hook: a wheel carries the guest SDKs, the ABI and the examples as package data.

Everything else is declared in pyproject.toml. ``build_py`` copies the repository folders listed
in ``circuit_host/resources.py`` (``SHIPPED``) into ``circuit_host/_data`` of the build, where
``circuit_host.resources`` finds them; an editable install skips the copy and reads the checkout.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _resources() -> ModuleType:
    """``circuit_host.resources`` loaded on its own: the build has none of the package's dependencies."""
    spec = importlib.util.spec_from_file_location("_circuit_resources", HERE / "host" / "circuit_host" / "resources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class build_py_with_data(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        resources = _resources()
        target = Path(self.build_lib) / "circuit_host" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        for folder in resources.SHIPPED:
            shutil.copytree(HERE / folder, target / folder, ignore=shutil.ignore_patterns(*resources.NOT_SHIPPED))


setup(cmdclass={"build_py": build_py_with_data})

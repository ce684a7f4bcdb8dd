"""wasmtime-py's private API is used from one module, which refuses a release it was not checked against."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from circuit_host.abi import _wasmtime_private as private

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "host" / "circuit_host"
FENCE = PACKAGE_DIR / "abi" / "_wasmtime_private.py"
# Private members of wasmtime-py objects the host relies on; only the fence may touch them.
PRIVATE_MEMBERS = re.compile(
    r"\.(_context|_func|_from_ptr|_from_raw|_consume|_invalidate|_unintern|_ffi|_types|_enter)\b"
)


def test_the_installed_release_passes_the_checks() -> None:
    private.check_version(private.version("wasmtime"))
    private.check_layouts()


@pytest.mark.parametrize("release", ["49.0.1", "51.0.0", "5.0.0", "500.1"])
def test_another_release_is_refused_with_a_clear_message(release: str) -> None:
    with pytest.raises(private.UnsupportedWasmtime, match=rf"wasmtime-py {re.escape(release)} is not supported"):
        private.check_version(release)


def test_importing_the_host_under_a_faked_release_fails_before_touching_private_bindings() -> None:
    """The version is faked in a fresh interpreter; importing the runtime must stop at the fence."""
    script = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '51.2.0' if name == 'wasmtime' else real(name)\n"
        "import circuit_host.sandbox.runtime\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "UnsupportedWasmtime" in result.stderr
    assert "wasmtime-py 51.2.0 is not supported" in result.stderr


def test_no_other_module_imports_or_touches_wasmtime_private_api() -> None:
    offenders: list[str] = []
    for path in PACKAGE_DIR.rglob("*.py"):
        if path == FENCE or "_data" in path.parts:
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wasmtime"):
                names = [node.module, *(alias.name for alias in node.names)]
                if any(part.startswith("_") for name in names for part in name.split(".")):
                    offenders.append(f"{path.name}:{node.lineno} imports {names}")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("wasmtime") and any(p.startswith("_") for p in alias.name.split(".")):
                        offenders.append(f"{path.name}:{node.lineno} imports {alias.name}")
        uses_wasmtime = re.search(r"^\s*(import|from) wasmtime", text, re.MULTILINE) is not None
        for number, line in enumerate(text.splitlines(), 1):
            if uses_wasmtime and PRIVATE_MEMBERS.search(line.split("#", 1)[0]):
                offenders.append(f"{path.relative_to(PACKAGE_DIR)}:{number}: {line.strip()}")
    assert not offenders, "private wasmtime-py API outside abi/_wasmtime_private.py:\n" + "\n".join(offenders)

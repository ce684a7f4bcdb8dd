"""Compile a Python circuit (DIR/circuit.py, or package DIR/circuit) into a WebAssembly component.

componentize-py compiles the circuit, the guest SDK (``guest_sdk/python``) and the SDK's entry
module against ``abi/circuit.wit`` with ``--stub-wasi``: the component embeds CPython and
imports only ``circuit:script/*``, so a guest has no filesystem, clock, randomness or network
beyond what the ABI offers. The interpreter is pre-initialized at build time, which is why the
SDK imports every module it needs at module level.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..bundles.manifest import read_manifest
from ..resources import python_sdk_dir, wit_dir
from .python_deps import vendor_requirements
from .python_world import world_for
from .zig_build import BUILD_TIMEOUT_S, BuildError

ENTRY_MODULE = "circuit_sdk._entry"


def is_python_circuit(directory: Path) -> bool:
    """A circuit directory whose code is ``circuit.py`` (or a ``circuit`` package)."""
    return (directory / "circuit.py").is_file() or (directory / "circuit" / "__init__.py").is_file()


def componentize_py() -> str:
    """The componentize-py executable next to this interpreter, else on PATH."""
    local = Path(sys.executable).with_name("componentize-py")
    if local.exists():
        return str(local)
    found = shutil.which("componentize-py")
    if found is None:
        raise BuildError("componentize-py is not installed (pip install componentize-py)")
    return found


def componentize_command(
    directory: Path, out: Path, extra_paths: tuple[Path, ...] = (), world: str = "circuit", entry: str = ENTRY_MODULE
) -> list[str]:
    """The exact componentize-py invocation, exposed so docs and tests can show or reuse it."""
    command = [componentize_py(), "-d", str(wit_dir()), "-w", world, "componentize", "--stub-wasi"]
    for path in (directory, *extra_paths, python_sdk_dir()):
        command += ["-p", str(path)]
    return [*command, entry, "-o", str(out)]


def build_python_circuit(
    directory: Path,
    out: Path | None = None,
    extra_paths: tuple[Path, ...] = (),
    world: str = "circuit",
    entry: str = ENTRY_MODULE,
) -> Path:
    """Compile a Python circuit into a WASI-free component (10-30 s); ``out`` defaults to
    ``DIR/build/<dir name>.wasm``. ``extra_paths`` are searched for imports after the circuit's
    own directory (its bundled pure-Python dependencies). ``world`` names a 1.0.0 world; a circuit
    whose code uses ``circuit_sdk.jobs`` is built against the 1.1.0 world of that name
    (``python_world.world_for``); a fully qualified ``world`` is used as given."""
    directory = Path(directory).resolve()
    if not is_python_circuit(directory):
        raise BuildError(f"no Python circuit: {directory / 'circuit.py'} does not exist")
    out = Path(out).resolve() if out is not None else directory / "build" / f"{directory.name}.wasm"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    if ":" not in world:
        world = world_for(directory, world)
    command = componentize_command(directory, out, extra_paths, world, entry)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"building {directory} took longer than {BUILD_TIMEOUT_S} s") from exc
    if done.returncode != 0 or not out.is_file():
        detail = (done.stderr or done.stdout).strip()
        raise BuildError(f"componentize-py failed for {directory}:\n{detail}")
    return out


def build_python_package(directory: Path, out_dir: Path | None = None) -> Path:
    """Compile a Python circuit with the dependencies its ``circuit.toml`` declares: the
    ``[python] requirements`` are vendored into ``OUT/site-packages`` (``OUT`` defaults to
    ``DIR/build``) and the component is written to ``OUT/<dir name>.wasm``."""
    directory = Path(directory).resolve()
    out_dir = Path(out_dir).resolve() if out_dir is not None else directory / "build"
    extra_paths = vendor_declared(directory, out_dir)
    return build_python_circuit(directory, out_dir / f"{directory.name}.wasm", extra_paths=extra_paths)


def vendor_declared(directory: Path, out_dir: Path) -> tuple[Path, ...]:
    """Vendor the ``[python] requirements`` of ``directory/circuit.toml`` into ``out_dir/site-packages``
    (a no-op when unchanged since the last build); return the import roots to build with."""
    manifest_path = directory / "circuit.toml"
    requirements = read_manifest(manifest_path).python.requirements if manifest_path.is_file() else ()
    return tuple(vendor_requirements(directory, requirements, out_dir / "site-packages"))


TEST_WORLD = "circuit-test-coverage"
TEST_ENTRY_MODULE = "circuit_sdk._test_entry"


def build_python_tests(directory: Path, out: Path | None = None, extra_paths: tuple[Path, ...] = ()) -> Path:
    """Compile ``tests.py`` with the circuit into a test component (world ``circuit-test-coverage``:
    the circuit's ``handle``, ``list-tests``/``run-test`` and the guest-measured ``coverage``);
    ``out`` defaults to ``DIR/build/<dir name>_tests.wasm``."""
    directory = Path(directory).resolve()
    if not (directory / "tests.py").is_file():
        raise BuildError(f"no tests: {directory / 'tests.py'} does not exist")
    out = Path(out).resolve() if out is not None else directory / "build" / f"{directory.name}_tests.wasm"
    return build_python_circuit(directory, out, extra_paths, world=TEST_WORLD, entry=TEST_ENTRY_MODULE)

"""Compile a Zig circuit (DIR/circuit.zig) with the guest SDK into a core wasm module.

The build goes through ``python -m ziglang`` (the pinned ``ziglang`` wheel) so it needs no
system toolchain. The SDK's ``entry.zig`` is the root module: it imports the author's file as
module ``script`` and exports the ABI entry points, which keeps circuit sources free of glue.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import CircuitError
from ..resources import zig_sdk_dir

OPTIMIZE_MODES = ("Debug", "ReleaseSafe", "ReleaseFast", "ReleaseSmall")

DEFAULT_SDK_DIR = zig_sdk_dir()

# 64 KiB of stack instead of Zig's default 1 MiB keeps initial memory at ~2 pages, so a
# host's memory limit and per-instance cost stay small; the SDK recurses only boundedly.
STACK_BYTES = 65536

BUILD_TIMEOUT_S = 300


class BuildError(CircuitError):
    """A circuit could not be compiled; the message carries the compiler's diagnostics."""

    kind = "build_error"


def build_command(source: Path, sdk_dir: Path, output: Path, optimize: str) -> list[str]:
    """The exact compiler invocation, exposed so docs and tests can show or reuse it."""
    name = output.stem
    command = [
        sys.executable, "-m", "ziglang", "build-exe",
        "-target", "wasm32-freestanding",
        "-fno-entry",
        "-rdynamic",
        "-O", optimize,
        "--stack", str(STACK_BYTES),
        "--name", name,
    ]  # fmt: skip
    if optimize != "Debug":
        command.append("-fstrip")  # ReleaseFast keeps debug sections otherwise
    command += [
        "--dep", "circuit", "--dep", "script", f"-Mroot={sdk_dir / 'entry.zig'}",
        "--dep", "circuit", f"-Mscript={source}",
        f"-Mcircuit={sdk_dir / 'circuit.zig'}",
        f"-femit-bin={output}",
    ]  # fmt: skip
    return command


def build_tests_command(source_dir: Path, sdk_dir: Path, output: Path, optimize: str) -> list[str]:
    """The compiler invocation for a test module: root ``test_entry.zig`` exports the circuit's
    ``handle`` and the tests' ``list-tests``/``run-test``; ``tests.zig`` sees ``circuit``,
    ``testing`` and the circuit itself as ``script``."""
    command = build_command(source_dir / "circuit.zig", sdk_dir, output, optimize)
    first = command.index("--dep")
    command[first:] = [
        "--dep", "circuit", "--dep", "testing", "--dep", "script", "--dep", "tests",
        f"-Mroot={sdk_dir / 'test_entry.zig'}",
        "--dep", "circuit", f"-Mscript={source_dir / 'circuit.zig'}",
        "--dep", "circuit", "--dep", "testing", "--dep", "script", f"-Mtests={source_dir / 'tests.zig'}",
        "--dep", "circuit", f"-Mtesting={sdk_dir / 'testing.zig'}",
        f"-Mcircuit={sdk_dir / 'circuit.zig'}",
        f"-femit-bin={output}",
    ]  # fmt: skip
    return command


def build_tests(
    source_dir: Path,
    out_dir: Path | None = None,
    optimize: str = "Debug",
    sdk_dir: Path = DEFAULT_SDK_DIR,
) -> Path:
    """Build ``source_dir/tests.zig`` with ``circuit.zig`` into ``out_dir/<dir name>_tests.wasm``.

    The test module is the ``circuit-test`` world (abi/circuit-test.wit). Debug by default, so
    it keeps the DWARF line table that coverage maps back to source lines.
    """
    source_dir = Path(source_dir).resolve()
    if not (source_dir / "tests.zig").is_file():
        raise BuildError(f"no tests: {source_dir / 'tests.zig'} does not exist")
    if not (sdk_dir / "testing.zig").is_file():
        raise BuildError(f"Zig guest SDK testing module not found at {sdk_dir}")
    return _compile(source_dir, out_dir, optimize, sdk_dir, f"{source_dir.name}_tests", build_tests_command)


def build_circuit(
    source_dir: Path,
    out_dir: Path | None = None,
    optimize: str = "ReleaseSmall",
    sdk_dir: Path = DEFAULT_SDK_DIR,
) -> Path:
    """Build ``source_dir/circuit.zig`` into ``out_dir/<dir name>.wasm`` and return its path.

    ``out_dir`` defaults to ``source_dir/zig-out``. Raises ``BuildError`` with the compiler's
    stderr when the source does not compile, so authors see Zig's own diagnostics.
    """
    return _compile(Path(source_dir).resolve(), out_dir, optimize, sdk_dir, Path(source_dir).resolve().name, None)


def _compile(
    source_dir: Path,
    out_dir: Path | None,
    optimize: str,
    sdk_dir: Path,
    name: str,
    command_for: Callable[[Path, Path, Path, str], list[str]] | None,
) -> Path:
    source = source_dir / "circuit.zig"
    if optimize not in OPTIMIZE_MODES:
        raise BuildError(f"unknown optimize mode {optimize!r}; expected one of {', '.join(OPTIMIZE_MODES)}")
    if not source.is_file():
        raise BuildError(f"no circuit source: {source} does not exist")
    if not (sdk_dir / "circuit.zig").is_file():
        raise BuildError(f"Zig guest SDK not found at {sdk_dir}")
    out_dir = Path(out_dir).resolve() if out_dir is not None else source_dir / "zig-out"
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.wasm"

    if command_for is None:
        command = build_command(source, sdk_dir, output, optimize)
    else:
        command = command_for(source_dir, sdk_dir, output, optimize)
    try:
        done = subprocess.run(
            command, cwd=out_dir, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"building {source} took longer than {BUILD_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        if "No module named ziglang" in detail:
            raise BuildError("the ziglang package is not installed (pip install ziglang==0.17.1)")
        raise BuildError(f"building {source} failed:\n{detail}")
    if not output.is_file():
        raise BuildError(f"the compiler reported success but wrote no {output}")
    return output

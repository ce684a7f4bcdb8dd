"""Load-time validation, the compiled-module cache, and the module shapes other toolchains emit."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.errors import Rejected
from circuit_host.execution.executions import ExecutionOptions, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.sandbox.runtime import Runtime
from tests.conftest import guest_wat


def wasm(name: str) -> bytes:
    return bytes(wasmtime.wat2wasm(guest_wat(name)))


@pytest.mark.parametrize(
    ("guest", "message"),
    [
        ("imports_wasi", "import 'wasi_snapshot_preview1' 'fd_write' is not part of the circuit ABI v1"),
        ("imports_unknown", "import 'circuit:script/records@1.0.0' 'drop_all' is not part of the circuit ABI"),
        ("imports_wrong_signature", "has signature (i32 i32) -> (i32), expected (i32 i32 i32 i32 i32) -> ()"),
        ("imports_future_version", "import 'circuit:script/log@2.0.0' 'write' is not part of the circuit ABI"),
        ("missing_handle", "module must export function 'handle'"),
        ("huge_memory", "initial memory, over the cap"),
    ],
)
def test_bad_modules_are_rejected_with_the_reason(runtime: Runtime, guest: str, message: str) -> None:
    with pytest.raises(Rejected, match=None) as info:
        runtime.load(wasm(guest))
    assert message in str(info.value)


def test_wasi_rejection_says_wasi_is_unavailable(runtime: Runtime) -> None:
    with pytest.raises(Rejected, match="WASI is not available"):
        runtime.load(wasm("imports_wasi"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "missing \\0asm magic"),
        (b"hello world", "missing \\0asm magic"),
        (b"\0asm\x0d\x00\x01\x00", "component exports no 'handle'"),
        (b"\0asm\x01\x00\x00\x00\xff\xff", "invalid WebAssembly"),
    ],
)
def test_non_modules_are_rejected(runtime: Runtime, data: bytes, message: str) -> None:
    with pytest.raises(Rejected) as info:
        runtime.load(data)
    assert message in str(info.value)


def test_oversized_module_is_rejected_before_compiling(tmp_path: Path) -> None:
    with Runtime(cache_dir=None, max_module_bytes=64) as small, pytest.raises(Rejected, match="size cap"):
        small.load(wasm("echo"))


def test_memory_cap_is_checked_against_the_callers_limit(runtime: Runtime) -> None:
    runtime.load(wasm("echo"))  # 2 pages: fine under the default cap
    with pytest.raises(Rejected, match="over the cap of 65536"):
        runtime.load(wasm("echo"), memory_cap=65536)


def test_compiled_modules_are_cached_on_disk(tmp_path: Path) -> None:
    data = wasm("echo")
    with Runtime(cache_dir=tmp_path) as first:
        loaded = first.load(data)
        assert not loaded.from_disk_cache
    cached = list(tmp_path.glob("*.cwasm"))
    assert len(cached) == 1
    assert cached[0].name.startswith(loaded.sha256)
    with Runtime(cache_dir=tmp_path) as second:
        assert second.load(data).from_disk_cache


def test_corrupt_cache_entry_is_discarded_and_recompiled(tmp_path: Path) -> None:
    data = wasm("echo")
    with Runtime(cache_dir=tmp_path) as first:
        first.load(data)
    entry = next(tmp_path.glob("*.cwasm"))
    entry.write_bytes(b"not compiled code")
    with Runtime(cache_dir=tmp_path) as second:
        loaded = second.load(data)
        assert not loaded.from_disk_cache
    assert entry.read_bytes() != b"not compiled code"


def test_a_cache_entry_swapped_for_another_modules_is_refused_and_recompiled(
    tmp_path: Path, records: CircuitDB
) -> None:
    """Putting B's compiled code under A's name used to run B (issue 11, item 16): entries are MACed."""
    a, b = wasm("echo"), wasm("fail")
    with Runtime(cache_dir=tmp_path) as first:
        loaded_a, loaded_b = first.load(a), first.load(b)
    entry_a = next(tmp_path.glob(f"{loaded_a.sha256}*.cwasm"))
    entry_b = next(tmp_path.glob(f"{loaded_b.sha256}*.cwasm"))
    entry_a.write_bytes(entry_b.read_bytes())
    http = HttpConnector()
    try:
        with Runtime(cache_dir=tmp_path) as second:
            reloaded = second.load(a)
            assert not reloaded.from_disk_cache
            record = Executor(second, records, http).run(reloaded, {"still": "A"})
    finally:
        http.close()
    assert record.status == "ok", record.error
    assert record.output == {"still": "A"}


def test_the_cache_key_is_private_and_a_foreign_key_refuses_every_entry(tmp_path: Path) -> None:
    with Runtime(cache_dir=tmp_path) as first:
        first.load(wasm("echo"))
    assert (tmp_path / "cache.key").stat().st_mode & 0o777 == 0o600
    (tmp_path / "cache.key").write_bytes(b"k" * 32)  # another host's key: nothing cached is trusted
    with Runtime(cache_dir=tmp_path) as second:
        assert not second.load(wasm("echo")).from_disk_cache


def test_rejected_modules_are_never_cached(tmp_path: Path) -> None:
    with Runtime(cache_dir=tmp_path) as rt, pytest.raises(Rejected):
        rt.load(wasm("imports_wasi"))
    assert not list(tmp_path.glob("*.cwasm"))


def test_unknown_exports_are_ignored_and_never_called(executor: Executor, load_guest: Callable[[str], Any]) -> None:
    record = executor.run(load_guest("extra_exports"), {"ok": True})
    assert record.status == "ok"
    assert record.output == {"ok": True}


def test_initialize_runs_before_handle(executor: Executor, load_guest: Callable[[str], Any]) -> None:
    record = executor.run(load_guest("initialize"), None)
    assert record.status == "ok"
    assert record.output is True


def test_no_state_survives_between_executions(executor: Executor, load_guest: Callable[[str], Any]) -> None:
    module = load_guest("dml_then_trap")
    first = executor.run(module, 1)
    second = executor.run(module, 1)
    # The bump allocator's heap pointer starts fresh each time: same buffers, new instance.
    assert first.status == second.status == "ok"
    assert first.output["ids"] != second.output["ids"]


def test_executions_run_in_parallel_threads(executor: Executor, load_guest: Callable[[str], Any]) -> None:
    echo, spin = load_guest("echo"), load_guest("spin")
    slow = ExecutionOptions(limits=LimitsProfile(timeout_ms=300))
    with ThreadPoolExecutor(max_workers=4) as pool:
        spinning = [pool.submit(executor.run, spin, None, slow) for _ in range(2)]
        echoes = [pool.submit(executor.run, echo, {"n": i}) for i in range(20)]
        results = [f.result(timeout=30) for f in echoes]
        assert [r.output for r in results] == [{"n": i} for i in range(20)]
        assert all(f.result(timeout=30).status == "timeout" for f in spinning)


def test_load_module_refuses_a_component_with_a_clear_error(runtime: Runtime) -> None:
    with pytest.raises(Rejected, match="but a component"):
        runtime.load_module(b"\0asm\x0d\x00\x01\x00")

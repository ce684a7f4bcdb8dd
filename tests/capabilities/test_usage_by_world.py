"""``limits.usage`` shows a module the resources of its own ABI world.

The 1.0.0 WIT lists the usage map's resources and v1 message schemas never gain fields (abi/README.md
§3.1, §3.6), so ``async_jobs``, which came with 1.1.0 and ``jobs.enqueue``, is reported only to modules
that import 1.1.0 names; the host governs and records it for every execution either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from circuit_host.execution.executions import ExecutionOptions, Executor
from circuit_host.execution.limits import RESOURCES, guest_resources
from circuit_host.sandbox.runtime import Runtime

VLPR_1_0 = Path(__file__).resolve().parents[1] / "abi" / "modules" / "virtual_lpr-1.0.0.wasm"
JOBS_IMPORT = '(import "circuit:script/jobs@1.1.0" "enqueue" (func $enqueue (param i32 i32 i32 i32 i32)))'


def usage_guest(world: str) -> bytes:
    """A module that returns what ``limits.usage`` gave it; ``1.1.0`` also imports ``jobs``."""
    return wasmtime.wat2wasm(f"""
    (module
      (import "circuit:script/limits@1.0.0" "usage" (func $usage (param i32)))
      {JOBS_IMPORT if world == "1.1.0" else ""}
      (memory (export "memory") 2)
      (global $heap (mut i32) (i32.const 4096))
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (local $ptr i32)
        (local.set $ptr (global.get $heap))
        (global.set $heap (i32.add (global.get $heap) (local.get 3)))
        (local.get $ptr))
      (func (export "cabi_post_handle") (param i32))
      (func (export "handle") (param i32 i32) (result i32)
        (call $usage (i32.const 16))
        (i32.store8 (i32.const 32) (i32.const 0))
        (i32.store (i32.const 36) (i32.load (i32.const 16)))
        (i32.store (i32.const 40) (i32.load (i32.const 20)))
        (i32.const 32)))
    """)


@pytest.mark.parametrize(("world", "sees_async_jobs"), [("1.0.0", False), ("1.1.0", True)], ids=["v1.0.0", "v1.1.0"])
def test_a_module_sees_the_resources_of_its_world(
    runtime: Runtime, executor: Executor, world: str, sees_async_jobs: bool
) -> None:
    module = runtime.load(usage_guest(world))
    assert module.abi_version == world
    record = executor.run(module, b"\xc0", ExecutionOptions())  # type: ignore[arg-type]
    assert record.status == "ok", record.error
    seen = record.output  # the usage map's bytes are handle's msgpack output
    assert ("async_jobs" in seen) is sees_async_jobs
    assert set(seen) == set(RESOURCES) - (set() if sees_async_jobs else {"async_jobs"})
    assert record.usage["async_jobs"].limit == 50  # governed and recorded for both


def test_the_v1_map_is_the_one_the_frozen_wit_promised() -> None:
    """Every resource in circuit.wit's ``usage`` comment, plus query_bytes (added to every guest's map
    before 1.1.0, see abi/README.md §3.6); nothing else."""
    assert set(guest_resources("1.0.0")) == {
        "fuel",
        "timeout_ms",
        "memory_bytes",
        "queries",
        "query_rows",
        "query_bytes",
        "dml_statements",
        "dml_rows",
        "callouts",
        "callout_time_ms",
        "log_bytes",
        "input_bytes",
        "output_bytes",
    }
    assert guest_resources("1.1.0") == RESOURCES


def test_the_committed_virtual_lpr_1_0_0_is_a_1_0_0_module(runtime: Runtime) -> None:
    """Today's Virtual LPR bytes import only 1.0.0 names: the host runs them as a 1.0.0 module."""
    assert runtime.load(VLPR_1_0.read_bytes()).abi_version == "1.0.0"

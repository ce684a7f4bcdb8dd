"""The isolation floor: a fresh execution of an empty ``handle``, Circuit Script vs raw wasmtime vs Extism.

Three ways to run a guest function that does nothing, each in a fresh instance, measured in one
process with their iterations interleaved:

- **circuit**: ``Runtime.invoke`` on a module whose ``handle`` returns ``ok(nil)``, with a fresh
  ``ExecutionContext`` (governor, log, callout session) per call, as an ``Executor`` makes one;
- **wasmtime**: wasmtime-py's public API on the same module and engine: a ``Store`` with the same
  limits, fuel and deadline, ``InstancePre.instantiate``, ``exports(store)["handle"]``, ``handle(0, 0)``;
- **extism** (when ``extism`` is installed: ``pip install -e '.[bench]'``): a new
  ``Plugin(compiled)`` from one ``CompiledPlugin``, then ``plugin.call("handle", b"")``; the plugin
  is an Extism-shaped module whose ``handle`` returns 0.

    python benchmarks/bench_floor.py [--iterations 3000] [--profile]

``--profile`` also prints a cProfile of the circuit case (the functions with the largest own time).
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402
from tests.contexts import NoRecords  # noqa: E402

from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from circuit_host.abi.codec import encode  # noqa: E402
from circuit_host.connectors.http_client import HttpConnector  # noqa: E402
from circuit_host.execution.callout_policy import CalloutSession  # noqa: E402
from circuit_host.execution.context import ExecutionContext  # noqa: E402
from circuit_host.execution.execution_log import ExecutionLog  # noqa: E402
from circuit_host.execution.governor import Governor  # noqa: E402
from circuit_host.execution.limits import LimitsProfile  # noqa: E402
from circuit_host.sandbox.engine import MAX_TABLE_ELEMENTS, deadline_ticks  # noqa: E402
from circuit_host.sandbox.runtime import CircuitModule, Runtime  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402

# A circuit whose handle does nothing: ok(msgpack nil), with the ABI's required exports.
EMPTY_CIRCUIT = """(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 2048))
  (data (i32.const 1020) "\\c0")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get 3)))
    (local.get $ptr))
  (func (export "cabi_post_handle") (param i32))
  (func (export "handle") (param i32 i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 1020))
    (i32.store (i32.const 1032) (i32.const 1))
    (i32.const 1024)))
"""
# The same empty function in Extism's shape: no parameters, an i32 status.
EMPTY_EXTISM = '(module (memory (export "memory") 1) (func (export "handle") (result i32) (i32.const 0)))'


def circuit_case(runtime: Runtime, module: CircuitModule) -> Callable[[], None]:
    limits = LimitsProfile()
    http = HttpConnector()
    records = NoRecords()
    event = encode({})

    def run() -> None:
        governor = Governor(limits)
        context = ExecutionContext(
            governor=governor, log=ExecutionLog("floor", governor), records=records, http=CalloutSession(http, ())
        )
        outcome = runtime.invoke(module, event, context)
        assert outcome.status == "ok", outcome

    return run


def wasmtime_case(runtime: Runtime, module: CircuitModule) -> Callable[[], None]:
    engine, pre, limits = runtime.engine, module.instance_pre, LimitsProfile()
    ticks = deadline_ticks(limits.timeout_ms)

    def run() -> None:
        store = wasmtime.Store(engine)
        store.set_limits(memory_size=limits.memory_bytes, table_elements=MAX_TABLE_ELEMENTS, instances=1, tables=4)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(ticks)
        handle = pre.instantiate(store).exports(store)["handle"]
        handle(store, 0, 0)

    return run


def extism_case() -> Callable[[], None] | None:
    try:
        from extism.extism import CompiledPlugin, Plugin
    except ImportError:
        return None
    compiled = CompiledPlugin(bytes(wasmtime.wat2wasm(EMPTY_EXTISM)), wasi=False)

    def run() -> None:
        plugin = Plugin(compiled)
        plugin.call("handle", b"")

    return run


def interleaved(cases: dict[str, Callable[[], None]], iterations: int) -> dict[str, list[float]]:
    """Seconds per call of each case, iterations interleaved so machine noise hits all alike."""
    for _ in range(50):  # warm-up
        for run in cases.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(iterations):
        for name, run in cases.items():
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
    return samples


def profile(run: Callable[[], None], iterations: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)


def versions() -> str:
    found = []
    for name in ("wasmtime", "extism", "extism-sys"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="cProfile the circuit case afterwards")
    args = parser.parse_args(argv)
    configure_logging("error")
    print(f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}, {versions()}")
    with Runtime() as runtime:
        module = runtime.load(bytes(wasmtime.wat2wasm(EMPTY_CIRCUIT)))
        assert isinstance(module, CircuitModule)
        cases = {"circuit": circuit_case(runtime, module), "wasmtime": wasmtime_case(runtime, module)}
        extism = extism_case()
        if extism is not None:
            cases["extism"] = extism
        samples = interleaved(cases, args.iterations)
        medians = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
        print(f"iterations: {args.iterations} per case, interleaved; medians and p95 in µs\n")
        print(f"{'case':<12}{'median':>10}{'p95':>10}{'vs extism':>11}{'vs wasmtime':>13}")
        for name, values in samples.items():
            p95 = statistics.quantiles(values, n=20)[18] * 1e6 if len(values) > 1 else values[0] * 1e6
            vs_extism = f"{medians[name] / medians['extism']:.2f}" if "extism" in medians else "-"
            vs_wasmtime = medians[name] / medians["wasmtime"]
            print(f"{name:<12}{medians[name]:>10.1f}{p95:>10.1f}{vs_extism:>11}{vs_wasmtime:>13.2f}")
        if args.profile:
            profile(cases["circuit"], args.iterations)
    return medians


if __name__ == "__main__":
    main()

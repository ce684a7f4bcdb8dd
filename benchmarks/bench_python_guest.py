"""Python guests (componentize-py components) against the Zig guest and native Python, in one run.

Builds the Zig Virtual LPR, and one Python component holding the Python Virtual LPR plus the
test handlers of ``tests/python_guest/hostile.py`` (its ``Echo`` returns the records it got),
into a temp dir, then measures:

(a) Virtual LPR on 10 contacts, fresh execution each (save the contacts, run, commit), native
    Python vs Zig guest vs Python guest, interleaved; then one instrumented pass splitting a
    Python-guest execution into instantiation, guest, host capabilities and marshalling;
(b) the Python guest echoing a ~100 KB event, and the share of it spent moving the event in and
    the result out (two methods, see ``marshalling``);
(c) the list<u8> fast path against wasmtime-py's own converter, at 1 KB and 100 KB;
(d) loading the component from the disk cache against compiling it.

    python benchmarks/bench_python_guest.py [--iterations N]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402
import wasmtime.component as wc  # noqa: E402
from tests.examples.test_virtual_lpr import contacts  # noqa: E402
from wasmtime import _ffi as ffi  # noqa: E402

from benchmarks import native_vlpr  # noqa: E402
from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from circuit_host.abi import component_binding  # noqa: E402
from circuit_host.abi.codec import decode, encode  # noqa: E402
from circuit_host.capabilities import limits as limits_cap  # noqa: E402
from circuit_host.capabilities import log as log_cap  # noqa: E402
from circuit_host.capabilities import records as records_cap  # noqa: E402
from circuit_host.circuitdb import CircuitDB, open_store  # noqa: E402
from circuit_host.circuitdb.manifest import read_schema  # noqa: E402
from circuit_host.connectors.http_client import HttpConnector  # noqa: E402
from circuit_host.execution.callout_policy import CalloutSession  # noqa: E402
from circuit_host.execution.context import ExecutionContext  # noqa: E402
from circuit_host.execution.execution_log import ExecutionLog  # noqa: E402
from circuit_host.execution.executions import Executor  # noqa: E402
from circuit_host.execution.governor import Governor  # noqa: E402
from circuit_host.execution.limits import LimitsProfile  # noqa: E402
from circuit_host.execution.trigger_events import run_trigger_event  # noqa: E402
from circuit_host.sandbox import components  # noqa: E402
from circuit_host.sandbox.runtime import Loaded, Runtime  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402
from circuit_host.toolchain.python_build import build_python_circuit  # noqa: E402
from circuit_host.toolchain.zig_build import build_circuit  # noqa: E402

SCHEMA = ROOT / "examples" / "virtual_lpr" / "circuit.toml"
Sample = list[float]

# A component whose handle returns its input (echo) or msgpack nil (sink), with no other work:
# what remains of its execution is the fresh store and instance plus moving the bytes.
BOUNDARY_WAT = """(component
  (core module $m
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $at i32)
      (local.set $at (global.get $next))
      (global.set $next (i32.add (local.get $at) (local.get 3)))
      (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16)) (i32.const 1))))))
      (local.get $at))
    (func (export "handle") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 0xc0))
      (i32.store (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) ECHO_PTR)
      (i32.store (i32.const 24) ECHO_LEN)
      i32.const 16))
  (core instance $i (instantiate $m))
  (func (export "handle") (param "event" (list u8)) (result (result (list u8) (error string)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))"""


def boundary_component(echo: bool) -> bytes:
    ptr, length = ("(local.get 0)", "(local.get 1)") if echo else ("(i32.const 32)", "(i32.const 1)")
    return bytes(wasmtime.wat2wasm(BOUNDARY_WAT.replace("ECHO_PTR", ptr).replace("ECHO_LEN", length)))


# -- measuring --------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000


def p95(samples: Sample) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def interleaved(cases: Mapping[str, Callable[[], object]], iterations: int, warmup: int) -> dict[str, Sample]:
    """Seconds per call of each case, the cases taking turns so machine noise hits all alike."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    timings: dict[str, Sample] = {name: [] for name in cases}
    for _ in range(iterations):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    return timings


@contextmanager
def self_times(targets: list[tuple[Any, str, str]]) -> Iterator[dict[str, float]]:
    """Wrap ``owner.name`` for each target and add up, per label, the time spent in it minus the
    time spent in other wrapped calls it made (a profiler's "self" time). Restored on exit."""
    totals: dict[str, float] = dict.fromkeys((label for _, _, label in targets), 0.0)
    stack: list[float] = []  # time spent in wrapped children of each open call
    saved: list[tuple[Any, str, Any]] = []

    def wrap(original: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack.append(0.0)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                children = stack.pop()
                totals[label] += spent - children
                if stack:
                    stack[-1] += spent

        return timed

    for owner, name, label in targets:
        original = getattr(owner, name)
        saved.append((owner, name, original))
        setattr(owner, name, wrap(original, label))
    try:
        yield totals
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


MARSHALLING = [
    (component_binding, "_lower_bytes", "marshalling"),
    (component_binding, "_lift_bytes", "marshalling"),
    (component_binding, "_lift_string", "marshalling"),
    (ffi, "str_to_capi", "marshalling"),
]
BREAKDOWN = [
    (wc.Linker, "instantiate", "instantiation (fresh instance)"),
    (components, "call_handle", "guest: wasm + wasmtime's lift/lower"),  # the name components.py calls
    (component_binding, "_run", "host-call glue (Python)"),
    (records_cap, "query", "capabilities: records.query"),
    (records_cap, "dml", "capabilities: records.dml"),
    (log_cap, "write", "capabilities: log, limits"),
    (limits_cap, "usage", "capabilities: log, limits"),
    *MARSHALLING,
]


# -- the workloads ----------------------------------------------------------------------------


class Workbench:
    """Stores, connectors and builds shared by the measurements."""

    def __init__(self, work: Path, iterations: int) -> None:
        self.work = work
        self.iterations = iterations
        self.http = HttpConnector()
        self.stores: list[CircuitDB] = []

    def store(self, name: str) -> CircuitDB:
        store = open_store(self.work / f"{name}.db")
        store.apply_schema(read_schema(SCHEMA))
        self.stores.append(store)
        return store

    def context(self, store: CircuitDB) -> tuple[ExecutionContext, Any]:
        tx = store.begin()
        context = ExecutionContext(
            governor=Governor(LimitsProfile()),
            log=ExecutionLog("bench"),
            records=tx,
            http=CalloutSession(self.http, ()),
        )
        return context, tx

    def invoke(self, runtime: Runtime, loaded: Loaded, store: CircuitDB, event: bytes) -> Any:
        """``Runtime.invoke`` alone (no save, no commit): the execution of ``handle``."""
        context, tx = self.context(store)
        try:
            outcome = runtime.invoke(loaded, event, context)
        finally:
            tx.rollback()
            tx.close()
        assert outcome.status == "ok", outcome.error_message
        return outcome.output

    def close(self) -> None:
        self.http.close()
        for store in self.stores:
            store.close()


def vlpr(bench: Workbench, runtime: Runtime, zig: Loaded, python: Loaded) -> None:
    batch = contacts(10, seed=10)
    trigger = {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": batch}
    stores = {name: bench.store(name) for name in ("native", "zig", "python")}
    executors = {name: Executor(runtime, stores[name], bench.http) for name in ("zig", "python")}

    def native() -> None:
        tx = stores["native"].begin()
        ids = tx.seed("Contact", batch)
        native_vlpr.handle(tx, bench.http, [{**c, "Id": i} for c, i in zip(batch, ids, strict=True)])
        tx.commit()
        tx.close()

    def guest(name: str, loaded: Loaded) -> Callable[[], None]:
        def run() -> None:
            record = run_trigger_event(executors[name], loaded, trigger)
            assert record.status == "ok", record.error

        return run

    cases = {"native Python": native, "Zig guest": guest("zig", zig), "Python guest": guest("python", python)}
    full = interleaved(cases, bench.iterations, warmup=10)

    # handle alone, on contacts saved once: the part of an execution the sandbox is responsible for
    tx = stores["python"].begin()
    ids = tx.seed("Contact", batch)
    tx.commit()
    tx.close()
    event = encode({**trigger, "new": [{**c, "Id": i} for c, i in zip(batch, ids, strict=True)]})
    invoke_cases = {
        "Zig guest": lambda: bench.invoke(runtime, zig, stores["python"], event),
        "Python guest": lambda: bench.invoke(runtime, python, stores["python"], event),
        "Python guest, event {} (no handler)": lambda: bench.invoke(runtime, python, stores["python"], b"\x80"),
    }
    handle_only = interleaved(invoke_cases, bench.iterations, warmup=10)

    print(f"(a) Virtual LPR, 10 contacts; {bench.iterations} interleaved iterations after 10 warm-up")
    print(f"    {'execution':<44}{'median ms':>11}{'p95 ms':>9}")
    for name, samples in full.items():
        print(f"    {name + ': save, run, commit':<44}{ms(statistics.median(samples)):>11.2f}{ms(p95(samples)):>9.2f}")
    for name, samples in handle_only.items():
        print(
            f"    {name + ': Runtime.invoke only':<44}{ms(statistics.median(samples)):>11.2f}{ms(p95(samples)):>9.2f}"
        )

    passes = max(20, bench.iterations // 4)
    with self_times(BREAKDOWN) as totals:
        started = time.perf_counter()
        for _ in range(passes):
            bench.invoke(runtime, python, stores["python"], event)
        total = (time.perf_counter() - started) / passes
    print(f"\n    Python guest, Runtime.invoke split (instrumented, mean of {passes}; total {ms(total):.2f} ms):")
    for label, seconds in totals.items():
        print(f"      {label:<42}{ms(seconds / passes):>8.3f} ms")
    print(
        f"      {'other host work (store, arm, decode, ...)':<42}{ms(total - sum(totals.values()) / passes):>8.3f} ms"
    )


def marshalling(bench: Workbench, runtime: Runtime, python: Loaded) -> None:
    """Method 1 times the binding's conversions inside real executions. Method 2 needs no
    instrumentation: the same event through a component that only returns it (or nil) gives
    the whole boundary cost (Python conversion, wasmtime's value arrays and canonical-ABI copies)
    as a difference; the host's msgpack decode of the echoed output is timed apart and removed."""
    store = bench.store("echo")
    people = contacts(550, seed=3)
    shapes = {
        "records (550 contacts)": [{**c, "Id": f"003{i:012d}"} for i, c in enumerate(people)],
        "one 100 KB bin field": [{"B": bytes(range(256)) * 400}],
    }
    sink, echo = (runtime.load(boundary_component(echo)) for echo in (False, True))
    n = max(5, bench.iterations // 10)
    print(f"\n(b) ~100 KB event through the Python guest's Echo handler; {n} runs each")
    print(
        f"    {'event':<26}{'bytes':>8}{'total ms':>10}{'conv. ms':>10}{'share':>8}"
        f"{'in ms':>8}{'out ms':>8}{'share':>8}"
    )
    for shape, rows in shapes.items():
        event = encode({"kind": "trigger", "object": "Echo", "operation": "after_insert", "new": rows})
        assert bench.invoke(runtime, python, store, event) == rows
        total, method1, moved_in, moved_out = boundary_costs(bench, runtime, store, (python, sink, echo), event, n)
        print(
            f"    {shape:<26}{len(event):>8}{ms(total):>10.2f}{ms(method1):>10.3f}{method1 / total:>8.1%}"
            f"{ms(moved_in):>8.3f}{ms(moved_out):>8.3f}{(moved_in + moved_out) / total:>8.1%}"
        )
    print("    conv. = the binding's own conversions timed in place (method 1); in/out = the whole")
    print("    boundary, measured as differences on a component that only returns the event (method 2).")


def boundary_costs(
    bench: Workbench, runtime: Runtime, store: CircuitDB, loaded: tuple[Loaded, Loaded, Loaded], event: bytes, n: int
) -> tuple[float, float, float, float]:
    """Seconds: the Python guest's execution, its conversions (method 1), and the boundary cost of
    moving ``event`` in and the same bytes out (method 2)."""
    python, sink, echo = loaded
    total = statistics.median(interleaved({"py": lambda: bench.invoke(runtime, python, store, event)}, n, 2)["py"])
    with self_times(MARSHALLING) as converted:
        for _ in range(n):
            bench.invoke(runtime, python, store, event)
    boundary = interleaved(
        {
            "sink tiny": lambda: bench.invoke(runtime, sink, store, b"\x80"),
            "sink": lambda: bench.invoke(runtime, sink, store, event),
            "echo": lambda: bench.invoke(runtime, echo, store, event),
            "decode": lambda: decode(event, "output"),
        },
        max(20, bench.iterations // 4),
        warmup=3,
    )
    median = {name: statistics.median(samples) for name, samples in boundary.items()}
    moved_in = median["sink"] - median["sink tiny"]
    moved_out = median["echo"] - median["sink"] - median["decode"]
    return total, converted["marshalling"] / n, moved_in, moved_out


def fast_path(bench: Workbench) -> None:
    """wasmtime-py's list<u8> converters (unpatched) against the patched ones, on a list<u8> type
    taken from a component, lowering into and lifting out of one C value."""
    engine = wasmtime.Engine()
    component = wc.Component(engine, boundary_component(echo=True))
    handle: Any = component.type.exports(engine)["handle"].ty
    bytes_type = handle.params[0][1]
    store = wasmtime.Store(engine)
    converters = {
        "wasmtime-py": (
            component_binding.unpatched_converter("ListType.convert_to_c"),
            component_binding.unpatched_converter("ListType.convert_from_c"),
        ),
        "fast path": (wc.ListType.convert_to_c, wc.ListType.convert_from_c),
    }

    def round_trip(to_c: Any, from_c: Any, data: bytes) -> tuple[float, float]:
        val = ffi.wasmtime_component_val_t()
        started = time.perf_counter()
        to_c(bytes_type, store, data, ctypes.pointer(val))
        lowered = time.perf_counter()
        assert from_c(bytes_type, val) == data  # lifting also frees the C list
        return lowered - started, time.perf_counter() - lowered

    print("\n(c) list<u8> conversion, one value: lower (Python -> C values) / lift (C values -> Python)")
    print(f"    {'size':<8}{'converter':<14}{'lower ms':>11}{'lift ms':>11}")
    for size in (1024, 100 * 1024):
        data = os.urandom(size)
        for name, (to_c, from_c) in converters.items():
            runs = 3 if name == "wasmtime-py" and size > 10_000 else max(20, bench.iterations // 2)
            round_trip(to_c, from_c, data)
            samples = [round_trip(to_c, from_c, data) for _ in range(runs)]
            lower = statistics.median(s[0] for s in samples)
            lift = statistics.median(s[1] for s in samples)
            print(f"    {f'{size // 1024} KB':<8}{name:<14}{ms(lower):>11.3f}{ms(lift):>11.3f}")


def loading(wasm: bytes, compile_seconds: float, cache: Path) -> None:
    samples = []
    for _ in range(5):
        with Runtime(cache) as fresh:  # a new runtime: nothing in memory, the compiled file on disk
            started = time.perf_counter()
            loaded = fresh.load(wasm)
            samples.append(time.perf_counter() - started)
            assert isinstance(loaded, components.CircuitComponent) and loaded.from_disk_cache
    print(f"\n(d) loading the {len(wasm) / 1e6:.1f} MB Python component into a runtime")
    print(f"    compile (first load, serialized to the disk cache) {compile_seconds:>8.2f} s")
    print(f"    from the disk cache (median of 5 new runtimes)     {ms(statistics.median(samples)):>8.1f} ms")


def build_python(work: Path) -> Path:
    """The test component of tests/python_guest: the Python VLPR as ``vlpr``, hostile.py on top."""
    source = work / "py-circuit"
    source.mkdir()
    shutil.copy(ROOT / "examples" / "virtual_lpr_py" / "circuit.py", source / "vlpr.py")
    shutil.copy(ROOT / "tests" / "python_guest" / "hostile.py", source / "circuit.py")
    return build_python_circuit(source, work / "py-build" / "circuit.wasm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    configure_logging("error")
    work = Path(tempfile.mkdtemp(prefix="circuit-bench-py-"))
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"wasmtime {version('wasmtime')}, componentize-py {version('componentize-py')}, ziglang {version('ziglang')}"
    )
    started = time.perf_counter()
    zig_wasm = build_circuit(ROOT / "examples" / "virtual_lpr", work / "zig-build").read_bytes()
    py_wasm = build_python(work).read_bytes()
    print(f"builds: {time.perf_counter() - started:.1f} s (Zig {len(zig_wasm)} bytes, Python {len(py_wasm)} bytes)\n")
    bench = Workbench(work, args.iterations)
    try:
        with Runtime(work / "cache") as runtime:
            started = time.perf_counter()
            python = runtime.load(py_wasm)
            compile_seconds = time.perf_counter() - started
            zig = runtime.load(zig_wasm)
            vlpr(bench, runtime, zig, python)
            marshalling(bench, runtime, python)
        fast_path(bench)
        loading(py_wasm, compile_seconds, work / "cache")
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

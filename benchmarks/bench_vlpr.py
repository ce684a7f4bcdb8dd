"""Virtual LPR: a fresh-instance sandboxed execution vs the same logic in native Python.

Both sides use the same connectors (a SQLite file, an httpx client) and do the same work
per iteration: save the batch of new contacts, score them (optionally with the Census
callout to a loopback server), update the contacts, insert the Tasks, commit. The two run
interleaved in one process so machine noise hits both alike; the ratio is what matters.

    python benchmarks/bench_vlpr.py [--iterations N] [--census]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import LoopbackServer  # noqa: E402
from tests.examples.test_virtual_lpr import census, configure_census, contacts  # noqa: E402

from benchmarks import native_vlpr  # noqa: E402
from circuit_host.circuitdb import open_store  # noqa: E402
from circuit_host.circuitdb.manifest import read_schema  # noqa: E402
from circuit_host.connectors.http_client import HttpConnector  # noqa: E402
from circuit_host.execution.callout_policy import HostPattern  # noqa: E402
from circuit_host.execution.executions import ExecutionOptions, Executor  # noqa: E402
from circuit_host.execution.trigger_events import run_trigger_event  # noqa: E402
from circuit_host.sandbox.runtime import CircuitModule, Runtime  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402
from circuit_host.toolchain.zig_build import build_circuit  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(
    runtime: Runtime, module: CircuitModule, work: Path, server: LoopbackServer, size: int, args: argparse.Namespace
) -> tuple[float, float, float]:
    """Median ms of the sandboxed and the native execution on ``size`` contacts, and median fuel."""
    batch = contacts(size, seed=size)
    guest_store, native_store = open_store(work / f"g{size}.db"), open_store(work / f"n{size}.db")
    for store in (guest_store, native_store):
        store.apply_schema(read_schema(ROOT / "examples" / "virtual_lpr" / "circuit.toml"))
    http = HttpConnector()
    if args.census:
        for store in (guest_store, native_store):
            configure_census(store, f"{server.base}/census")
    executor = Executor(runtime, guest_store, http)
    options = ExecutionOptions(allowed_hosts=(HostPattern.parse(server.base),))
    event = {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": batch}
    fuel: list[int] = []

    def sandboxed() -> None:
        record = run_trigger_event(executor, module, event, options)
        assert record.status == "ok", record.error
        fuel.append(record.usage["fuel"].used)

    def native() -> None:
        tx = native_store.begin()
        ids = tx.seed("Contact", batch)
        native_vlpr.handle(tx, http, [{**c, "Id": i} for c, i in zip(batch, ids, strict=True)])
        tx.commit()
        tx.close()

    timings: dict[str, list[float]] = {"sandboxed": [], "native": []}
    cases: list[tuple[str, Callable[[], None]]] = [("sandboxed", sandboxed), ("native", native)]
    for _ in range(5):  # warm-up: caches, SQLite pages, connection pools
        for _, fn in cases:
            fn()
    for _ in range(args.iterations):
        for name, fn in cases:
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    http.close()
    guest_store.close()
    native_store.close()
    return median_ms(timings["sandboxed"]), median_ms(timings["native"]), statistics.median(fuel)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--census", action="store_true", help="include the Census callout (loopback HTTP)")
    args = parser.parse_args(argv)
    configure_logging("error")

    work = Path(tempfile.mkdtemp(prefix="circuit-bench-"))
    wasm = build_circuit(ROOT / "examples" / "virtual_lpr", work / "build", optimize="ReleaseSmall")
    server = LoopbackServer()
    census(server)
    print(
        f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}, "
        f"wasmtime {version('wasmtime')}, module {wasm.stat().st_size} bytes"
    )
    print(f"iterations: {args.iterations} per case, census callout: {'on' if args.census else 'off'}\n")
    print(f"{'case':<14}{'sandboxed ms':>14}{'native ms':>12}{'ratio':>8}{'fuel':>12}")
    with Runtime(cache_dir=work / "cache") as runtime:
        module = runtime.load(wasm.read_bytes())
        for size in (10, 200):
            guest, base, fuel = measure(runtime, module, work, server, size, args)
            print(f"{f'{size} contacts':<14}{guest:>14.3f}{base:>12.3f}{guest / base:>8.2f}{fuel:>12.0f}")
    server.close()


if __name__ == "__main__":
    main()

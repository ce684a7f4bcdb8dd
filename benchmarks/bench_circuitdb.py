"""CircuitDB on SQLite vs PostgreSQL: a 200-record trigger and the raw statements under it.

Two workloads per backend, measured in one run:
- ``trigger``: the sandboxed Virtual LPR ``after_insert`` on 200 new contacts, committed
  (save 200 contacts, 1 query, 1 update of 200 rows, 1 Task insert), as executions,
  queries and DML statements per second;
- ``statements``: one transaction per iteration doing a 200-row insert, a 200-row
  ``WHERE Id IN :ids`` query and a 200-row update, then commit, as statements and rows
  per second.

    python benchmarks/bench_circuitdb.py [--iterations N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.examples.test_virtual_lpr import contacts  # noqa: E402

from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from circuit_host.circuitdb import CircuitDB, open_store  # noqa: E402
from circuit_host.circuitdb.manifest import read_schema  # noqa: E402
from circuit_host.connectors.http_client import HttpConnector  # noqa: E402
from circuit_host.connectors.records import DmlOp  # noqa: E402
from circuit_host.execution.executions import Executor  # noqa: E402
from circuit_host.execution.trigger_events import run_trigger_event  # noqa: E402
from circuit_host.sandbox.runtime import CircuitModule, Runtime  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402
from circuit_host.toolchain.zig_build import build_circuit  # noqa: E402

BATCH = 200


def timed(iterations: int, step: Callable[[], None]) -> float:
    """Median seconds per call, after two warm-up calls."""
    for _ in range(2):
        step()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        step()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def trigger_workload(runtime: Runtime, module: CircuitModule, store: CircuitDB, iterations: int) -> str:
    http = HttpConnector()
    executor = Executor(runtime, store, http)
    event = {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": contacts(BATCH, seed=3)}
    usage: dict[str, int] = {}

    def step() -> None:
        record = run_trigger_event(executor, module, event, None)
        assert record.status == "ok", record.error
        usage.update(queries=record.usage["queries"].used, dml=record.usage["dml_statements"].used + 1)

    seconds = timed(iterations, step)
    http.close()
    per_second = 1 / seconds
    return (
        f"{seconds * 1000:9.1f} ms/execution  {per_second:7.1f} executions/s  "
        f"{usage['queries'] * per_second:7.1f} queries/s  {usage['dml'] * per_second:7.1f} DML statements/s"
    )


def statement_workload(store: CircuitDB, iterations: int) -> str:
    rows = [{"LastName": f"Bench{i}", "Email": f"b{i}@example.com", "Title": "VP"} for i in range(BATCH)]

    def step() -> None:
        tx = store.begin()
        ids = tx.dml(DmlOp.INSERT, "Contact", rows).ids
        found = tx.query("SELECT Id, LastName, Email FROM Contact WHERE Id IN :ids", {"ids": ids}, max_rows=BATCH)
        assert len(found.records) == BATCH
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": i, "Title": "CEO"} for i in ids])
        tx.commit()
        tx.close()

    seconds = timed(iterations, step)
    return f"{seconds * 1000:9.1f} ms/3 statements  {3 / seconds:7.1f} statements/s  {3 * BATCH / seconds:8.0f} rows/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    configure_logging("error")
    work = Path(tempfile.mkdtemp(prefix="circuitdb-bench-"))
    wasm = build_circuit(ROOT / "examples" / "virtual_lpr", work / "build")
    print(
        f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}"
    )
    print(f"iterations: {args.iterations}, batch: {BATCH} records\n")
    with Runtime(cache_dir=work / "cache") as runtime:
        module = runtime.load(wasm.read_bytes())
        for backend, target in (("sqlite", str(work / "bench.sqlite3")), ("postgresql", args.postgres)):
            store = open_store(target, tenant=f"bench-{uuid.uuid4().hex[:8]}")
            try:
                store.apply_schema(read_schema(ROOT / "examples" / "virtual_lpr" / "circuit.toml"))
                print(f"{backend:<11} trigger     {trigger_workload(runtime, module, store, args.iterations)}")
                print(f"{backend:<11} statements  {statement_workload(store, args.iterations)}")
            finally:
                store.drop_tenant()


if __name__ == "__main__":
    main()

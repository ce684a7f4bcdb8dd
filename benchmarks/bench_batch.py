"""A batch circuit over n records: records/s from ``POST /v1/batches`` to the batch's end, and the
peak memory of the worker that ran it (issue 13, 7(c)).

The server (in this process, no job workers) serves the API; one ``circuit worker`` subprocess runs
every job of the batch; its peak resident memory is its ``ru_maxrss`` (``os.wait4`` after it stops),
so keyset paging shows as memory that does not grow with n. The circuit is the tests' batch circuit
(``tests/server/batch_circuit``): each chunk inserts one row per record it is given.

    python benchmarks/bench_batch.py [--records 50000] [--scope 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.conftest import LiveServer, serve  # noqa: E402
from tests.server.test_end_to_end import deploy  # noqa: E402

from circuit_host.bundles import pack_bundle  # noqa: E402
from circuit_host.connectors.records import DmlOp  # noqa: E402
from circuit_host.server import ServerSettings  # noqa: E402
from circuit_host.server.state import ServerState  # noqa: E402
from circuit_host.toolchain.zig_build import build_circuit  # noqa: E402

CIRCUIT = ROOT / "tests" / "server" / "batch_circuit"
SEED_ROWS = 5_000


@dataclass(frozen=True)
class BatchRun:
    backend: str
    records: int
    scope: int
    seconds: float
    worker_peak_mib: float
    chunks_ok: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds


@contextmanager
def api_server(data_dir: Path, db_url: str | None) -> Iterator[LiveServer]:
    settings = ServerSettings(data_dir=data_dir, db_url=db_url, job_workers=0)
    state = ServerState(settings)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


def run_batch(bundle: Path, records: int, scope: int, db_url: str | None, work: Path) -> BatchRun:
    data_dir = work / f"data-{'pg' if db_url else 'sqlite'}"
    with api_server(data_dir, db_url) as live:
        tenant = live.tenant(f"bench{int(time.time())}")
        with tenant.client(live) as client:
            deploy(client, bundle, env="dev")
            store = live.state.store(tenant.id, "dev")
            for start in range(0, records, SEED_ROWS):
                rows = [{"Name": f"item-{i:07d}"} for i in range(start, min(records, start + SEED_ROWS))]
                transaction = store.begin()
                transaction.dml(DmlOp.INSERT, "Batch_Item__c", rows)
                transaction.commit()
            log = (work / "worker.log").open("ab")
            command = [sys.executable, "-m", "circuit_host.cli", "worker", "--data-dir", str(data_dir)]
            command += ["--concurrency", "1", "--log-level", "warning"] + (["--db", db_url] if db_url else [])
            worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                started = time.perf_counter()
                batch = post_and_wait(client, scope)
                seconds = time.perf_counter() - started
            finally:
                worker.send_signal(signal.SIGTERM)
                _, _, usage = os.wait4(worker.pid, 0)
                log.close()
    assert batch["state"] == "finished" and batch["records_processed"] == records, batch
    backend = "PostgreSQL" if db_url else "SQLite"
    return BatchRun(backend, records, scope, seconds, usage.ru_maxrss / 1024, batch["chunks_ok"])


def post_and_wait(client: httpx.Client, scope: int) -> dict[str, object]:
    started = client.post("/v1/batches", json={"circuit": "batch_items", "env": "dev", "scope": scope})
    assert started.status_code == 202, started.text
    while (batch := client.get(f"/v1/batches/{started.json()['id']}").json())["state"] == "running":
        time.sleep(0.2)
    return dict(batch)


def main(argv: list[str] | None = None) -> list[BatchRun]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--scope", type=int, default=200)
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL (the fleet queue)")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        bundle = pack_bundle(CIRCUIT / "circuit.toml", build_circuit(CIRCUIT, work / "build"), work)
        for db_url in ([None] if args.sqlite else []) + ([args.postgres] if args.postgres else []):
            runs.append(run_batch(bundle, args.records, args.scope, db_url, work))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'backend':<12}{'records':>10}{'scope':>7}{'chunks':>8}{'seconds':>10}{'records/s':>11}{'worker peak':>13}")
    for run in runs:
        print(
            f"{run.backend:<12}{run.records:>10}{run.scope:>7}{run.chunks_ok:>8}{run.seconds:>10.1f}"
            f"{run.records_per_s:>11.0f}{run.worker_peak_mib:>9.0f} MiB"
        )
    return runs


if __name__ == "__main__":
    main()

"""Webhook -> execution -> commit -> response, through the real server, next to plain FastAPI.

Both servers run in this process on loopback under uvicorn and score the same signed
generic webhook (one new Contact): the Circuit Script host runs the sandboxed Virtual LPR
trigger against CircuitDB (SQLite) and stores the execution; the baseline is a plain FastAPI
endpoint that parses the same JSON, scores natively (benchmarks/native_vlpr.py) against the
same kind of store, and commits. Clients send sequentially (latency) and with N concurrent
connections (throughput).

    python benchmarks/bench_server.py [--requests 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from tests.server.conftest import serve  # noqa: E402

from benchmarks import native_vlpr  # noqa: E402
from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from circuit_host.circuitdb import open_store  # noqa: E402
from circuit_host.circuitdb.manifest import read_schema  # noqa: E402
from circuit_host.connectors.http_client import HttpConnector  # noqa: E402
from circuit_host.server import ServerSettings  # noqa: E402
from circuit_host.server.bootstrap import bootstrap  # noqa: E402
from circuit_host.server.state import ServerState  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402

SECRET = "bench-secret-0123456789"


def signed(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": f"evt-{n}-{time.monotonic_ns()}",
            "object": "Contact",
            "operation": "insert",
            "occurred_at": datetime.now(UTC).isoformat(),
            "records": [
                {
                    "LastName": f"Lead{n}",
                    "Email": f"l{n}@acme.io",
                    "Company_Size__c": 250,
                    "Website_Visits__c": 9,
                    "Emails_Opened__c": 4,
                    "Called_Business__c": n % 2 == 0,
                    "LeadSource": "Web",
                }
            ],
        }
    ).encode()
    t = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "x-circuit-signature": f"t={t},v1={mac}"}


def baseline_app(data: Path) -> FastAPI:
    app = FastAPI()
    store = open_store(data / "baseline.sqlite3")
    store.apply_schema(read_schema(ROOT / "examples" / "virtual_lpr" / "circuit.toml"))
    http = HttpConnector()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, Any]:
        payload = json.loads(await request.body())
        tx = store.begin()
        ids = tx.seed("Contact", payload["records"])
        result = native_vlpr.handle(tx, http, [{**r, "Id": i} for r, i in zip(payload["records"], ids, strict=True)])
        tx.commit()
        tx.close()
        return result

    return app


async def drive(url: str, headers: dict[str, str], requests: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(headers=headers, trust_env=False, timeout=60) as client:
        queue = list(range(requests))

        async def worker() -> None:
            while queue:
                n = queue.pop()
                body, sign = signed(n)
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=sign)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, f"{response.status_code}: {response.text}"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, requests / (time.perf_counter() - started)


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] * 1000


def report(name: str, latencies: list[float], rps: float) -> None:
    print(
        f"{name:<28}{percentile(latencies, 50):8.2f}{percentile(latencies, 95):8.2f}{percentile(latencies, 99):8.2f}"
        f"{rps:10.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    configure_logging("error")
    data = Path(tempfile.mkdtemp(prefix="circuit-server-bench-"))
    settings = ServerSettings(data_dir=data / "host")
    state = ServerState(settings)
    boot = bootstrap(state)
    state.platform.tenants.update_settings(
        boot.tenant_id, {"generic_hmac_secret": SECRET, "rate_limit_per_minute": 10_000_000}
    )
    print(
        f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}; "
        f"{args.requests} requests per run\n"
    )
    print(f"{'server (concurrency)':<28}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'req/s':>10}")
    host_serving = serve(state, settings)
    host = next(host_serving)
    baseline_server = _serve_app(baseline_app(data))  # the same uvicorn, threads and loopback
    baseline_url = next(baseline_server)
    hook = f"{host.url}/v1/hooks/generic/{boot.webhook_token}"
    for concurrency in (1, args.concurrency):
        for name, url in (("circuit host", hook), ("plain FastAPI, native", f"{baseline_url}/hook")):
            asyncio.run(drive(url, {}, 20, concurrency))  # warm-up
            latencies, rps = asyncio.run(drive(url, {}, args.requests, concurrency))
            report(f"{name} ({concurrency})", latencies, rps)
    for generator in (host_serving, baseline_server):
        generator.close()
    state.close()


def _serve_app(app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()

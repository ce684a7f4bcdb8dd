"""A load generator in its own process, for the HTTP benchmarks (``bench_server.py``, webhook intake).

``run_load(target, concurrency, requests)`` sends ``requests`` requests to ``target`` over
``concurrency`` connections from another process, and returns req/s, latency percentiles and errors:

- with ``hey`` on the PATH (Debian: ``apt-get install hey``) and a fixed body, ``hey -o csv`` is the
  generator (Go: it takes little of the CPU the servers need);
- otherwise, or when each request needs a body of its own (``Target.factory``: a signed webhook with a
  unique event id), this file runs as an asyncio httpx client in a subprocess:
  ``python benchmarks/load_generator.py URL --concurrency C --requests N [--body-file F | --factory M:F]``.
  A factory is ``module:function``; ``function(n, argument)`` returns ``(body, headers)`` for request n.

An error is a request that got no answer (timeout, connection refused) or a status outside 2xx.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Factory = Callable[[int, str], tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class Target:
    """One endpoint under load: a fixed ``body``, or a ``factory`` (``module:function``) per request."""

    name: str
    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    factory: str | None = None
    factory_argument: str = ""


@dataclass(frozen=True)
class LoadResult:
    target: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]  # seconds, of the answered requests
    errors: dict[str, int]  # status code (or "no answer") -> count
    generator: str

    @property
    def rps(self) -> float:
        """Successful (2xx) requests per second: a refused request is not throughput."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: int) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def run_load(target: Target, concurrency: int, requests: int, timeout_s: float = 60) -> LoadResult:
    """``requests`` requests (with ``hey``, rounded up to a multiple of ``concurrency``) over
    ``concurrency`` connections, from a process of their own."""
    if target.factory is None and shutil.which("hey"):
        return _run_hey(target, concurrency, requests, timeout_s)
    return _run_client(target, concurrency, requests, timeout_s)


def _run_hey(target: Target, concurrency: int, requests: int, timeout_s: float) -> LoadResult:
    requests = -(-requests // concurrency) * concurrency  # hey sends n // c per worker
    with tempfile.NamedTemporaryFile(suffix=".body") as body:
        body.write(target.body)
        body.flush()
        command = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", target.method, "-o", "csv"]
        command += ["-t", str(int(timeout_s)), "-D", body.name]
        for name, value in target.headers.items():
            command += ["-H", f"{name}: {value}"]
        started = time.perf_counter()
        done = subprocess.run([*command, target.url], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    for row in csv.DictReader(io.StringIO(done.stdout)):
        status = row["status-code"]
        if status.startswith("2"):
            latencies.append(float(row["response-time"]))
        else:
            errors[status] += 1
    answered = len(latencies) + sum(errors.values())
    if answered < requests:
        errors["no answer"] += requests - answered
    return LoadResult(target.name, concurrency, requests, seconds, latencies, dict(errors), "hey")


def _run_client(target: Target, concurrency: int, requests: int, timeout_s: float) -> LoadResult:
    with tempfile.NamedTemporaryFile(suffix=".body") as body:
        body.write(target.body)
        body.flush()
        command = [sys.executable, str(Path(__file__).resolve()), target.url, "--method", target.method]
        command += ["--concurrency", str(concurrency), "--requests", str(requests), "--timeout", str(timeout_s)]
        command += ["--body-file", body.name]
        for name, value in target.headers.items():
            command += ["--header", f"{name}: {value}"]
        if target.factory is not None:
            command += ["--factory", target.factory, "--factory-argument", target.factory_argument]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    return LoadResult(
        target.name, concurrency, requests, report["seconds"], report["latencies"], report["errors"], "httpx"
    )


async def _client(args: argparse.Namespace) -> dict[str, object]:
    import httpx

    factory: Factory | None = None
    if args.factory:
        module, _, function = args.factory.partition(":")
        sys.path.insert(0, str(ROOT))
        factory = getattr(importlib.import_module(module), function)
    body = Path(args.body_file).read_bytes() if args.body_file else b""
    headers = dict(h.split(": ", 1) for h in args.header)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    numbers = iter(range(args.requests))
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=args.timeout, limits=limits) as client:

        async def worker() -> None:
            for n in numbers:
                content, extra = factory(n, args.factory_argument) if factory else (body, {})
                started = time.perf_counter()
                try:
                    response = await client.request(args.method, args.url, content=content, headers=headers | extra)
                except httpx.HTTPError:
                    errors["no answer"] += 1
                    continue
                if 200 <= response.status_code < 300:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[str(response.status_code)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": latencies, "errors": dict(errors)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--body-file")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--factory", help="module:function making (body, headers) for request n")
    parser.add_argument("--factory-argument", default="")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_client(args))))


if __name__ == "__main__":
    main()

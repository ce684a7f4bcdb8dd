"""The benchmarks are not run by the suite for their figures (they time things); this keeps them from
rotting: each imports, each but the Python-guest one (a componentize-py build takes minutes) runs
one iteration end to end, every function the Python-guest profile wraps still exists where it is
wrapped, and the load generator counts what it sends and what comes back."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import LoopbackServer, require_postgres

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("bench_*.py")))
def test_every_benchmark_imports_and_has_a_main(name: str) -> None:
    assert callable(load(name).main)


def test_the_python_guest_profile_wraps_functions_that_exist() -> None:
    bench = load("bench_python_guest")
    for owner, attribute, _label in bench.BREAKDOWN:
        assert callable(getattr(owner, attribute)), f"{owner}.{attribute}"


def test_the_floor_benchmark_runs_each_case_once(capsys: pytest.CaptureFixture[str]) -> None:
    medians = load("bench_floor").main(["--iterations", "1"])
    assert {"circuit", "wasmtime"} <= set(medians)
    assert all(value > 0 for value in medians.values())
    assert "circuit" in capsys.readouterr().out


def test_the_statements_benchmark_runs_once_on_sqlite() -> None:
    medians = load("bench_statements").main(["--iterations", "1", "--postgres", "none"])
    assert set(medians) == {"CircuitDB, SQLite", "sqlite3"}


def test_the_statements_benchmark_runs_once_on_postgresql() -> None:
    url = require_postgres().replace("postgresql+psycopg://", "postgresql://")
    medians = load("bench_statements").main(["--iterations", "1", "--postgres", url])
    assert set(medians) == {"CircuitDB, SQLite", "sqlite3", "CircuitDB, PostgreSQL", "psycopg"}


def test_the_virtual_lpr_benchmark_runs_once(capsys: pytest.CaptureFixture[str]) -> None:
    load("bench_vlpr").main(["--iterations", "1"])
    out = capsys.readouterr().out
    assert "10 contacts" in out and "200 contacts" in out


def test_the_circuitdb_benchmark_runs_once(capsys: pytest.CaptureFixture[str]) -> None:
    load("bench_circuitdb").main(["--iterations", "1", "--postgres", require_postgres()])
    assert "statements" in capsys.readouterr().out


def test_the_schema_benchmark_runs_once_on_each_backend() -> None:
    lines = load("bench_schema").main(["--sizes", "3", "--postgres", require_postgres()])
    assert len(lines) == 2 and all(line.split()[0] == "3" and "one field" in line for line in lines)


def test_the_server_benchmark_runs_both_servers_in_their_own_processes() -> None:
    arguments = ["--requests", "2", "--clients", "1,2", "--warmup", "1", "--workers", "2"]
    results = load("bench_server").main(arguments)
    assert [(r.target, r.concurrency) for r in results] == [
        ("plain FastAPI, native", 1),
        ("host, SQLite, 2 processes", 1),
        ("plain FastAPI, native", 2),
        ("host, SQLite, 2 processes", 2),
    ]
    assert all(r.error_count == 0 and len(r.latencies) == r.requests for r in results)


def odd_fails(n: int, argument: str) -> tuple[bytes, dict[str, str]]:
    """A load-generator factory (imported by the client subprocess): request n says its number."""
    return json.dumps({"n": n, "argument": argument}).encode(), {"x-request": str(n)}


def _odd_fails_route(request: BaseHTTPRequestHandler) -> None:
    n = json.loads(request.body)["n"]  # type: ignore[attr-defined]
    status = 200 if n % 2 == 0 else 503
    request.send_response(status)
    request.send_header("content-length", "0")
    request.end_headers()


def test_the_python_load_client_sends_each_factory_body_and_counts_failures(loopback: LoopbackServer) -> None:
    generator = load("load_generator")
    loopback.routes["/hook"] = _odd_fails_route
    target = generator.Target(
        "hook", f"{loopback.base}/hook", factory="tests.test_benchmarks:odd_fails", factory_argument="secret"
    )
    result = generator.run_load(target, concurrency=3, requests=10)
    assert result.generator == "httpx"
    assert result.errors == {"503": 5} and len(result.latencies) == 5
    sent = sorted(json.loads(body)["n"] for _, path, body in loopback.requests if path == "/hook")
    assert sent == list(range(10))
    assert all(json.loads(body)["argument"] == "secret" for _, _, body in loopback.requests)
    assert result.rps > 0 and not math.isnan(result.percentile_ms(99))


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey is not installed (apt-get install hey)")
def test_hey_sends_the_fixed_body_and_counts_failures(loopback: LoopbackServer) -> None:
    generator = load("load_generator")
    loopback.routes["/ok"] = lambda request: _status(request, 200)
    loopback.routes["/down"] = lambda request: _status(request, 503)
    ok = generator.run_load(generator.Target("ok", f"{loopback.base}/ok", b'{"n": 1}'), concurrency=2, requests=5)
    assert ok.generator == "hey"
    assert ok.requests == 6 and ok.error_count == 0 and len(ok.latencies) == 6  # rounded up to 2 per worker
    assert {body for _, path, body in loopback.requests if path == "/ok"} == {b'{"n": 1}'}
    down = generator.run_load(generator.Target("down", f"{loopback.base}/down", b"x"), concurrency=1, requests=3)
    assert down.errors == {"503": 3} and down.latencies == []


def _status(request: BaseHTTPRequestHandler, status: int) -> None:
    request.send_response(status)
    request.send_header("content-length", "0")
    request.end_headers()


def test_the_webhook_intake_benchmark_runs_the_host_and_the_baseline() -> None:
    results = load("bench_webhooks").main(["intake", "--requests", "2", "--clients", "1,2", "--warmup", "1"])
    assert [(r.concurrency, r.error_count) for r in results] == [(1, 0), (1, 0), (2, 0), (2, 0)]  # type: ignore[union-attr]


def test_the_webhook_burst_benchmark_applies_every_webhook() -> None:
    timings = load("bench_webhooks").main(["burst", "--webhooks", "10", "--postgres", "none"])
    assert set(timings) == {"SQLite end to end (2 job workers)", "SQLite processing (2 job workers)"}


def test_the_batch_benchmark_runs_a_small_batch_through_a_worker_process() -> None:
    [run] = load("bench_batch").main(["--records", "300", "--scope", "100"])
    assert (run.backend, run.records, run.chunks_ok) == ("SQLite", 300, 3)
    assert run.seconds > 0 and run.worker_peak_mib > 0

"""The host server under load, next to plain FastAPI doing the same work natively: three processes.

- **circuit host**: a real ``circuit serve`` subprocess on a fresh data directory, bootstrapped as
  on a first start (the Virtual LPR example deployed to production; the tenant's rate limit raised so
  it does not shape the load). ``POST /v1/records/Contact`` with an admin key saves one new Contact
  through the deployed trigger: a fresh sandbox, 1 query, 1 update, the commit and the execution
  record with its debug log.
- **plain FastAPI, native**: ``benchmarks/baseline_app.py`` on uvicorn in its own subprocess: the
  same request body, the same scoring in Python, sqlite3 writes in one transaction.
- **the load generator**: a third process (``load_generator.py``: ``hey`` when installed, else an
  asyncio httpx client), at each concurrency level, for each server in turn.

    python benchmarks/bench_server.py [--requests 300] [--clients 1,8,32] [--records 1]

Each row: successful (2xx) req/s over the run, latency percentiles of the successful requests, errors (non-2xx or no
answer) and the host's req/s as a share of the baseline's at the same level (goal 4 of issue 15:
at least 0.5, no errors and p99 under 1 s at 32 clients, p50 at one client within 3 ms).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from benchmarks.load_generator import LoadResult, Target, run_load  # noqa: E402
from circuit_host.server import ServerSettings  # noqa: E402
from circuit_host.server.bootstrap import bootstrap  # noqa: E402
from circuit_host.server.state import ServerState  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402

CONTACT = {
    "LastName": "Lead",
    "Email": "lead@acme.io",
    "Company_Size__c": 250,
    "Website_Visits__c": 9,
    "Emails_Opened__c": 4,
    "Called_Business__c": True,
    "LeadSource": "Web",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_host(data: Path, port: int) -> str:
    """Bootstrap the data directory as ``circuit serve`` would, lift the rate limit; the admin key."""
    state = ServerState(ServerSettings(data_dir=data, public_url=f"http://127.0.0.1:{port}"))
    try:
        boot = bootstrap(state)
        state.platform.tenants.update_settings(boot.tenant_id, {"rate_limit_per_minute": 10_000_000})
    finally:
        state.close()
    assert boot.admin_key is not None
    return boot.admin_key


@contextlib.contextmanager
def process(command: list[str], health: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; ready when ``health`` answers 200."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}  # the defaults, as prepared
    with log.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 120
            while True:
                if child.poll() is not None:
                    raise RuntimeError(f"{command[:4]} exited with {child.returncode}; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(health, timeout=2, trust_env=False).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{health} did not answer within 120 s; see {log}")
                time.sleep(0.2)
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@contextlib.contextmanager
def sampled(pid: int, output: Path, clients: int) -> Iterator[None]:
    """py-spy (``pip install py-spy``; not a dependency) sampling ``pid`` for the block, then a summary
    of where the server's busy threads were: own time per function and time under a few of ours."""
    spy = Path(sys.executable).with_name("py-spy")
    raw = output.with_name(f"{output.stem}-{clients}{output.suffix}")
    command = [str(spy), "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--format", "raw"]
    command += ["--output", str(raw)]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached before the load starts
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        sampler.wait(timeout=60)
    print(profile_summary(raw, clients))


def profile_summary(raw: Path, clients: int, top: int = 15) -> str:
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()  # time under each function of circuit_host
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[frames[-1].split(" (")[0]] += int(count)
        for frame in {f.split(":")[0] for f in frames if "circuit_host" in f}:
            ours[frame] += int(count)
    lines = [f"host profile, {clients} clients: {total} samples of busy threads ({raw})"]
    lines += [f"  own   {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += [f"  under {n / total:6.1%}  {name}" for name, n in ours.most_common(top)]
    return "\n".join(lines)


def row(result: LoadResult, baseline: LoadResult | None) -> str:
    ratio = f"{result.rps / baseline.rps:.2f}" if baseline is not None and baseline.rps else "-"
    errors = ", ".join(f"{n}× {status}" for status, n in sorted(result.errors.items())) or "0"
    return (
        f"{result.target:<24}{result.concurrency:>8}{result.rps:>9.1f}{result.percentile_ms(50):>9.1f}"
        f"{result.percentile_ms(95):>9.1f}{result.percentile_ms(99):>9.1f}{ratio:>8}  {errors}"
    )


def main(argv: list[str] | None = None) -> list[LoadResult]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="per server and concurrency level")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma-separated")
    parser.add_argument("--records", type=int, default=1, help="contacts per request")
    parser.add_argument("--warmup", type=int, default=20, help="requests per server before each measured run")
    parser.add_argument(
        "--profile-host",
        type=Path,
        help="py-spy's raw samples of the host's measured rows to this file; prints a summary",
    )
    args = parser.parse_args(argv)
    configure_logging("error")
    levels = [int(c) for c in args.clients.split(",")]
    data = Path(tempfile.mkdtemp(prefix="circuit-server-bench-"))
    host_port, base_port = free_port(), free_port()
    admin_key = prepare_host(data / "host", host_port)
    body = json.dumps({"records": [CONTACT] * args.records}).encode()
    json_headers = {"content-type": "application/json"}
    targets = [
        Target(
            "circuit host",
            f"http://127.0.0.1:{host_port}/v1/records/Contact",
            body,
            json_headers | {"authorization": f"Bearer {admin_key}"},
        ),
        Target("plain FastAPI, native", f"http://127.0.0.1:{base_port}/v1/records/Contact", body, json_headers),
    ]
    serve = [sys.executable, "-m", "circuit_host.cli", "serve", "--data-dir", str(data / "host")]
    serve += ["--port", str(host_port), "--log-level", "warning"]
    baseline = [sys.executable, str(ROOT / "benchmarks" / "baseline_app.py"), "--port", str(base_port)]
    baseline += ["--db", str(data / "baseline.sqlite3")]
    results: list[LoadResult] = []
    with (
        process(serve, f"http://127.0.0.1:{host_port}/healthz", data / "host.log") as host_process,
        process(baseline, f"http://127.0.0.1:{base_port}/healthz", data / "baseline.log"),
    ):
        generator = run_load(targets[1], 1, 1).generator
        print(
            f"machine: {cpu_model()}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"load generator: {generator}; {args.requests} requests per row, {args.records} contact(s) each\n"
        )
        print(f"{'server':<24}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'ratio':>8}  errors")
        for clients in levels:
            level: list[LoadResult] = []
            for target in targets:
                run_load(target, clients, max(args.warmup, clients))
                sampling = args.profile_host is not None and target is targets[0]
                with sampled(host_process.pid, args.profile_host, clients) if sampling else contextlib.nullcontext():
                    level.append(run_load(target, clients, max(args.requests, clients)))
            host, native = level
            print(row(host, native))
            print(row(native, None))
            results += level
    return results


if __name__ == "__main__":
    main()

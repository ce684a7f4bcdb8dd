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
        [--workers 1,2] [--postgres URL]

``--workers 1,2`` runs one host per count (``circuit serve --workers N``: N processes on one socket);
``--postgres URL`` runs each of those on that PostgreSQL database too (a fresh database per host is
made next to it), so SQLite and PostgreSQL, one and two processes, are measured in one run.

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
from dataclasses import dataclass
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


def prepare_host(data: Path, port: int, db_url: str | None = None) -> str:
    """Bootstrap the data directory as ``circuit serve`` would, lift the rate limit; the admin key."""
    state = ServerState(ServerSettings(data_dir=data, public_url=f"http://127.0.0.1:{port}", db_url=db_url))
    try:
        boot = bootstrap(state)
        state.platform.tenants.update_settings(boot.tenant_id, {"rate_limit_per_minute": 10_000_000})
    finally:
        state.close()
    assert boot.admin_key is not None
    return boot.admin_key


def fresh_database(url: str, name: str) -> str:
    """A new, empty database beside ``url``'s (dropped first if an earlier run left it)."""
    import sqlalchemy as sa

    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


@dataclass(frozen=True)
class Host:
    """One ``circuit serve`` to measure: its label, process count and database (None: SQLite)."""

    label: str
    workers: int
    db_url: str | None


def hosts_to_measure(workers: list[int], postgres: str | None) -> list[Host]:
    found = []
    for db in [None, postgres] if postgres else [None]:
        for n in workers:
            backend = "PostgreSQL" if db else "SQLite"
            processes = "1 process" if n == 1 else f"{n} processes"
            url = fresh_database(db, f"bench_server_{n}") if db else None
            found.append(Host(f"host, {backend}, {processes}", n, url))
    return found


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
        f"{result.target:<36}{result.concurrency:>8}{result.rps:>9.1f}{result.percentile_ms(50):>9.1f}"
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
    parser.add_argument("--workers", default="1", help="host process counts to measure, comma-separated")
    parser.add_argument("--postgres", default=None, help="also measure each host on this PostgreSQL server")
    args = parser.parse_args(argv)
    configure_logging("error")
    levels = [int(c) for c in args.clients.split(",")]
    data = Path(tempfile.mkdtemp(prefix="circuit-server-bench-"))
    body = json.dumps({"records": [CONTACT] * args.records}).encode()
    json_headers = {"content-type": "application/json"}
    base_port = free_port()
    baseline_target = Target(
        "plain FastAPI, native", f"http://127.0.0.1:{base_port}/v1/records/Contact", body, json_headers
    )
    baseline = [sys.executable, str(ROOT / "benchmarks" / "baseline_app.py"), "--port", str(base_port)]
    baseline += ["--db", str(data / "baseline.sqlite3")]
    results: list[LoadResult] = []
    with contextlib.ExitStack() as running:
        running.enter_context(process(baseline, f"http://127.0.0.1:{base_port}/healthz", data / "baseline.log"))
        hosts: list[tuple[Target, subprocess.Popen[bytes]]] = []
        for n, host in enumerate(hosts_to_measure([int(w) for w in args.workers.split(",")], args.postgres)):
            port, directory = free_port(), data / f"host{n}"
            admin_key = prepare_host(directory, port, host.db_url)
            url = f"http://127.0.0.1:{port}"
            target = Target(
                host.label, f"{url}/v1/records/Contact", body, json_headers | {"authorization": f"Bearer {admin_key}"}
            )
            serve = [sys.executable, "-m", "circuit_host.cli", "serve", "--data-dir", str(directory)]
            serve += ["--port", str(port), "--log-level", "warning", "--workers", str(host.workers)]
            serve += ["--db", host.db_url] if host.db_url else []
            hosts.append((target, running.enter_context(process(serve, f"{url}/healthz", data / f"host{n}.log"))))
        generator = run_load(baseline_target, 1, 1).generator
        print(
            f"machine: {cpu_model()}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"load generator: {generator}; {args.requests} requests per row, {args.records} contact(s) each\n"
        )
        print(f"{'server':<36}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'ratio':>8}  errors")
        for clients in levels:
            run_load(baseline_target, clients, max(args.warmup, clients))
            native = run_load(baseline_target, clients, max(args.requests, clients))
            level = [native]
            for target, host_process in hosts:
                run_load(target, clients, max(args.warmup, clients))
                sampling = args.profile_host is not None and target is hosts[0][0]
                with sampled(host_process.pid, args.profile_host, clients) if sampling else contextlib.nullcontext():
                    level.append(run_load(target, clients, max(args.requests, clients)))
            for result in level[1:]:
                print(row(result, native))
            print(row(native, None))
            results += level
    return results


if __name__ == "__main__":
    main()

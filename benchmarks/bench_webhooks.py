"""Webhook intake and the inbox's throughput (issue 13, benchmarks 7(a) and 7(b)).

**intake** (7a): signed generic webhooks, one new Contact each, at 1, 8 and 32 concurrent senders, from
the load generator in its own process (``load_generator.py``, a body factory signing each request:
``webhook_bodies.py``). The host is a real ``circuit serve`` with ``--job-workers 0``, so the figures are
the 202 path alone (verify, one transaction storing the inbox row and its job); next to it,
``baseline_inbox_app.py``: plain FastAPI verifying the same signature and inserting the same row.
Goal: at least 0.7x the baseline's req/s, p99 at most 50 ms.

**burst** (7b): 10,000 GoHighLevel ``ContactCreate`` webhooks (Ed25519-signed), Virtual LPR deployed in
production. ``end to end``: sent at 32 concurrent senders to a ``circuit serve`` with its job workers,
timed from the first request until every inbox entry is applied (each Contact scored and committed).
``processing``: stored first by a server without workers, then timed from the moment workers start
(``circuit serve`` with workers on SQLite; on PostgreSQL one or two ``circuit worker`` processes next to
a ``circuit serve --job-workers 0``) until all are applied. Goal: at least 2,000 records/s on SQLite.

    python benchmarks/bench_webhooks.py intake [--requests 2000] [--clients 1,8,32]
    python benchmarks/bench_webhooks.py burst [--webhooks 10000] [--postgres URL|none] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat  # noqa: E402

from benchmarks.bench_server import free_port, process, row  # noqa: E402
from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from benchmarks.load_generator import LoadResult, Target, run_load  # noqa: E402
from benchmarks.webhook_bodies import CUSTOM_FIELDS, LOCATION  # noqa: E402
from circuit_host.server import ServerSettings  # noqa: E402
from circuit_host.server.bootstrap import bootstrap  # noqa: E402
from circuit_host.server.state import ServerState  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def prepare(data: Path, port: int, db_url: str | None, **tenant_settings: object) -> str:
    """Bootstrap as ``circuit serve`` would (Virtual LPR in production), configure the tenant; a webhook key."""
    state = ServerState(ServerSettings(data_dir=data, db_url=db_url, public_url=f"http://127.0.0.1:{port}"))
    try:
        boot = bootstrap(state)
        state.platform.tenants.update_settings(boot.tenant_id, {"rate_limit_per_minute": 10_000_000, **tenant_settings})
        _, key = state.platform.tenants.create_api_key(boot.tenant_id, ["webhook", "read"], "bench")
    finally:
        state.close()
    return key


def serve_command(data: Path, port: int, workers: int, db_url: str | None) -> list[str]:
    command = [sys.executable, "-m", "circuit_host.cli", "serve", "--data-dir", str(data), "--port", str(port)]
    command += ["--log-level", "warning", "--job-workers", str(workers)]
    return command + (["--db", db_url] if db_url else [])


def intake(args: argparse.Namespace) -> list[LoadResult]:
    data = Path(tempfile.mkdtemp(prefix="circuit-webhook-bench-"))
    host_port, base_port = free_port(), free_port()
    key = prepare(data / "host", host_port, None, generic_hmac_secret=SECRET)
    factory = "benchmarks.webhook_bodies:generic_contact"
    targets = [
        Target(
            "circuit host (202)",
            f"http://127.0.0.1:{host_port}/v1/hooks/generic?env=production",
            headers={"authorization": f"Bearer {key}"},
            factory=factory,
            factory_argument=SECRET,
        ),
        Target(
            "plain FastAPI insert",
            f"http://127.0.0.1:{base_port}/v1/hooks/generic",
            factory=factory,
            factory_argument=SECRET,
        ),
    ]
    baseline = [sys.executable, str(ROOT / "benchmarks" / "baseline_inbox_app.py"), "--port", str(base_port)]
    baseline += ["--db", str(data / "baseline.sqlite3"), "--secret", SECRET]
    results: list[LoadResult] = []
    with (
        process(
            serve_command(data / "host", host_port, 0, None), f"http://127.0.0.1:{host_port}/healthz", data / "h.log"
        ),
        process(baseline, f"http://127.0.0.1:{base_port}/healthz", data / "baseline.log"),
    ):
        print(machine(f"{args.requests} signed webhooks per row, host without job workers (the 202 path alone)"))
        print(f"{'server':<24}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'ratio':>8}  errors")
        for clients in [int(c) for c in args.clients.split(",")]:
            level = []
            for target in targets:
                run_load(target, clients, max(args.warmup, clients))
                level.append(run_load(target, clients, max(args.requests, clients)))
            print(row(level[0], level[1]))
            print(row(level[1], None))
            results += level
    return results


def applied(db_url: str) -> tuple[int, int]:
    """(applied, all) inbox entries, read from the control-plane database."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT count(*) FILTER (WHERE state = 'applied'), count(*) FROM cs_webhook_inbox")
            ).one()
    finally:
        engine.dispose()
    return int(found[0]), int(found[1])


def wait_applied(db_url: str, expected: int, timeout_s: float = 1800) -> float:
    """When every stored entry (at least ``expected`` minus the 1% the load generator may have lost) is applied."""
    started = time.monotonic()
    while (found := applied(db_url))[0] < max(found[1], expected - expected // 100):
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"only {applied(db_url)} entries applied after {timeout_s} s")
        time.sleep(0.2)
    return time.monotonic()


def scored(data: Path, tenant_records: Path | None, expected: int) -> None:
    """Every Contact got its grade: the trigger ran on each (SQLite: read the records file)."""
    if tenant_records is None:
        return
    files = list(tenant_records.glob("*/production.sqlite3"))
    conn = sqlite3.connect(files[0])
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'cdb_%_contact'")]
        graded = conn.execute(f'SELECT count(*) FROM "{tables[0]}" WHERE vlpr_grade__c IS NOT NULL').fetchone()[0]
    finally:
        conn.close()
    assert graded >= expected - expected // 100, f"only {graded} of {expected} contacts scored"


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def burst(args: argparse.Namespace) -> dict[str, float]:
    """The seconds each case took, by case."""
    signing = Ed25519PrivateKey.generate()
    private = base64.b64encode(signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()
    public = base64.b64encode(signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    ghl = {"ghl_public_key": public, "ghl_location_ids": [LOCATION], "ghl_custom_fields": CUSTOM_FIELDS}
    n = args.webhooks
    print(machine(f"{n} GoHighLevel ContactCreate webhooks, 32 concurrent senders, Virtual LPR in production"))
    print(f"{'case':<44}{'seconds':>9}{'records/s':>11}   intake req/s, p99 ms")

    def send(port: int, key: str) -> LoadResult:
        target = Target(
            "ghl",
            f"http://127.0.0.1:{port}/v1/hooks/ghl?env=production",
            headers={"authorization": f"Bearer {key}"},
            factory="benchmarks.webhook_bodies:ghl_contact_create",
            factory_argument=private,
        )
        result = run_load(target, 32, n, timeout_s=120)
        assert sum(result.errors.values()) <= n // 100, result.errors  # a loaded machine may drop a few
        return result

    timings: dict[str, float] = {}

    def report(case: str, seconds: float, load: LoadResult | None) -> None:
        timings[case] = seconds
        intake_figures = f"{load.rps:.0f}, {load.percentile_ms(99):.0f}" if load is not None else "-"
        print(f"{case:<44}{seconds:>9.1f}{n / seconds:>11.0f}   {intake_figures}")

    # SQLite, end to end: intake and processing at once
    data = Path(tempfile.mkdtemp(prefix="circuit-burst-"))
    port = free_port()
    key = prepare(data, port, None, **ghl)
    url = f"sqlite:///{data / 'platform.sqlite3'}"
    with process(
        serve_command(data, port, args.sqlite_workers, None), f"http://127.0.0.1:{port}/healthz", data / "s.log"
    ):
        started = time.monotonic()
        load = send(port, key)
        report(f"SQLite end to end ({args.sqlite_workers} job workers)", wait_applied(url, n) - started, load)
    scored(data, data / "records", n)

    # SQLite, processing only: stored by a server without workers, then applied
    data = Path(tempfile.mkdtemp(prefix="circuit-burst-"))
    port = free_port()
    key = prepare(data, port, None, **ghl)
    url = f"sqlite:///{data / 'platform.sqlite3'}"
    with process(serve_command(data, port, 0, None), f"http://127.0.0.1:{port}/healthz", data / "s0.log"):
        load = send(port, key)
    with process(
        serve_command(data, port, args.sqlite_workers, None), f"http://127.0.0.1:{port}/healthz", data / "s1.log"
    ):
        started = time.monotonic()
        report(f"SQLite processing ({args.sqlite_workers} job workers)", wait_applied(url, n) - started, None)
    scored(data, data / "records", n)

    if args.postgres == "none":
        return timings
    for workers in [int(w) for w in args.workers.split(",")]:
        with postgres_database(args.postgres) as db_url:
            data = Path(tempfile.mkdtemp(prefix="circuit-burst-pg-"))
            port = free_port()
            key = prepare(data, port, db_url, **ghl)
            health = f"http://127.0.0.1:{port}/healthz"
            with process(serve_command(data, port, 0, db_url), health, data / "pg.log"):
                load = send(port, key)
                worker = [sys.executable, "-m", "circuit_host.cli", "worker", "--db", db_url, "--data-dir", str(data)]
                worker += ["--concurrency", "2", "--log-level", "warning"]
                with contextlib.ExitStack() as stack:
                    started = time.monotonic()
                    for w in range(workers):
                        log = (data / f"worker{w}.log").open("wb")
                        stack.callback(log.close)
                        child = subprocess.Popen(worker, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
                        stack.callback(child.wait, 30)
                        stack.callback(child.terminate)
                    seconds = wait_applied(db_url.replace("postgresql://", "postgresql+psycopg://"), n) - started
                    report(f"PostgreSQL processing ({workers} circuit worker x 2)", seconds, load)
    return timings


def machine(what: str) -> str:
    return (
        f"machine: {cpu_model()}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; {what}\n"
    )


def main(argv: list[str] | None = None) -> list[LoadResult] | dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    a = sub.add_parser("intake")
    a.add_argument("--requests", type=int, default=2000, help="per server and concurrency level")
    a.add_argument("--clients", default="1,8,32")
    a.add_argument("--warmup", type=int, default=50)
    b = sub.add_parser("burst")
    b.add_argument("--webhooks", type=int, default=10_000)
    b.add_argument("--sqlite-workers", type=int, default=2, help="job worker threads of the SQLite server")
    b.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin URL (a database is made), or none")
    b.add_argument("--workers", default="1,2", help="circuit worker processes on PostgreSQL")
    args = parser.parse_args(argv)
    configure_logging("error")
    return intake(args) if args.which == "intake" else burst(args)


if __name__ == "__main__":
    main()

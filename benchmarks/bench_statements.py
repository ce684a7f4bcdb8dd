"""CircuitDB statements vs the raw driver: a 200-row insert, query and update in one transaction.

Each iteration, on each side: one transaction doing a 200-row insert into Contact, a 200-row
``WHERE Id IN :ids`` query and a 200-row update of one field, then a commit. The sides run
interleaved, so machine noise hits all of them alike:

- **CircuitDB** (``tx.dml`` / ``tx.query``), on a SQLite file and, when PostgreSQL answers, in a
  tenant of its own on PostgreSQL (dropped afterwards);
- **sqlite3**: the same statements as plain SQL through the standard library, on a table with the
  columns CircuitDB writes (``id`` unique, the three fields, created and modified timestamps), in a
  SQLite file in WAL mode with ``synchronous=NORMAL``, as CircuitDB's engine opens it;
- **psycopg**: the same SQL through psycopg 3 on a scratch table of the same shape, dropped afterwards.

Ids are 18-character strings generated in Python on the raw side too. The ratio CircuitDB / raw
is what goal 1 of issue 15 measures (target: at most 2).

    python benchmarks/bench_statements.py [--iterations 50] [--postgres URL|none] [--profile]

``--profile`` prints a cProfile of the CircuitDB iterations on SQLite (own time, then cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_vlpr import cpu_model  # noqa: E402
from circuit_host.circuitdb import CircuitDB, open_store  # noqa: E402
from circuit_host.connectors.records import DmlOp  # noqa: E402
from circuit_host.settings import configure_logging  # noqa: E402

BATCH = 200
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_ids = itertools.count()


def rows() -> list[dict[str, Any]]:
    return [{"LastName": f"Bench{i}", "Email": f"b{i}@example.com", "Title": "VP"} for i in range(BATCH)]


def circuitdb_step(store: CircuitDB) -> Callable[[], None]:
    batch = rows()

    def step() -> None:
        tx = store.begin()
        try:
            ids = tx.dml(DmlOp.INSERT, "Contact", batch).ids
            found = tx.query("SELECT Id, LastName, Email FROM Contact WHERE Id IN :ids", {"ids": ids}, max_rows=BATCH)
            assert len(found.records) == BATCH
            tx.dml(DmlOp.UPDATE, "Contact", [{"Id": i, "Title": "CEO"} for i in ids])
            tx.commit()
        finally:
            tx.close()

    return step


def new_ids() -> list[str]:
    base = f"003{uuid.uuid4().hex[:9]}"
    return [f"{base}{next(_ids) % 1_000_000:06d}" for _ in range(BATCH)]


TABLE_SQL = (
    "CREATE TABLE {name} (_row {row} PRIMARY KEY, id TEXT NOT NULL UNIQUE, lastname TEXT, email TEXT, "
    "title TEXT, createddate {ts}, lastmodifieddate {ts})"
)


def raw_step(connect: Callable[[], Any], placeholder: str, table: str) -> Callable[[], None]:
    """The same three statements and commit through a DB-API driver (sqlite3 or psycopg)."""
    batch = rows()
    connection = connect()
    insert = (
        f"INSERT INTO {table} (id, lastname, email, title, createddate, lastmodifieddate) "
        f"VALUES ({', '.join([placeholder] * 6)})"
    )
    update = f"UPDATE {table} SET title = {placeholder}, lastmodifieddate = {placeholder} WHERE id = {placeholder}"

    def step() -> None:
        ids, now = new_ids(), datetime.now(UTC)
        cursor = connection.cursor()
        cursor.executemany(
            insert, [(i, r["LastName"], r["Email"], r["Title"], now, now) for i, r in zip(ids, batch, strict=True)]
        )
        marks = ", ".join([placeholder] * len(ids))
        cursor.execute(f"SELECT id, lastname, email FROM {table} WHERE id IN ({marks})", ids)
        assert len(cursor.fetchall()) == BATCH
        cursor.executemany(update, [("CEO", now, i) for i in ids])
        connection.commit()
        cursor.close()

    return step


@contextmanager
def sqlite_raw(work: Path) -> Iterator[Callable[[], None]]:
    path = work / "raw.sqlite3"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(TABLE_SQL.format(name="contact", row="INTEGER", ts="TEXT"))
    setup.close()
    sqlite3.register_adapter(datetime, lambda d: d.isoformat(" "))

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # as storage_engine.make_engine opens CircuitDB's
        return connection

    yield raw_step(connect, "?", "contact")


@contextmanager
def postgres_raw(url: str) -> Iterator[Callable[[], None]]:
    import psycopg

    table = f"bench_statements_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute(TABLE_SQL.format(name=table, row="BIGSERIAL", ts="TIMESTAMPTZ"))  # type: ignore[arg-type]
    try:
        yield raw_step(lambda: psycopg.connect(url), "%s", table)
    finally:
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute(f"DROP TABLE {table}")  # type: ignore[arg-type]


def postgres_problem(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def interleaved(cases: dict[str, Callable[[], None]], iterations: int) -> dict[str, list[float]]:
    for _ in range(3):  # warm-up: statement caches, pages, connection pools
        for run in cases.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(iterations):
        for name, run in cases.items():
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
    return samples


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL URL, or 'none' to skip PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="cProfile CircuitDB on SQLite afterwards")
    args = parser.parse_args(argv)
    configure_logging("error")
    work = Path(tempfile.mkdtemp(prefix="statements-bench-"))
    problem = "skipped" if args.postgres == "none" else postgres_problem(args.postgres)
    print(
        f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}"
    )
    print(f"iterations: {args.iterations}, interleaved; each: {BATCH}-row insert, IN query, update, commit")
    if problem:
        print(f"PostgreSQL: not measured ({problem})")
    store = open_store(work / "circuitdb.sqlite3")
    pg_store = (
        None
        if problem
        else open_store(
            args.postgres.replace("postgresql://", "postgresql+psycopg://"), tenant=f"bench-{uuid.uuid4().hex[:8]}"
        )
    )
    try:
        with sqlite_raw(work) as sqlite_step, postgres_raw(args.postgres) if not problem else _nothing() as pg_step:
            cases = {"CircuitDB, SQLite": circuitdb_step(store), "sqlite3": sqlite_step}
            if pg_store is not None and pg_step is not None:
                cases |= {"CircuitDB, PostgreSQL": circuitdb_step(pg_store), "psycopg": pg_step}
            samples = interleaved(cases, args.iterations)
            medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
            print(f"\n{'side':<24}{'median ms':>11}{'p95 ms':>9}{'rows/s':>10}{'vs raw':>8}")
            raw_of = {"CircuitDB, SQLite": "sqlite3", "CircuitDB, PostgreSQL": "psycopg"}
            for name, values in samples.items():
                p95 = statistics.quantiles(values, n=20)[18] * 1000 if len(values) > 1 else medians[name]
                ratio = f"{medians[name] / medians[raw_of[name]]:.2f}" if name in raw_of else "1.00"
                print(f"{name:<24}{medians[name]:>11.2f}{p95:>9.2f}{3 * BATCH / medians[name] * 1000:>10.0f}{ratio:>8}")
            if args.profile:
                profiler = cProfile.Profile()
                step = cases["CircuitDB, SQLite"]
                profiler.enable()
                for _ in range(args.iterations):
                    step()
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(30)
                stats.sort_stats("cumulative").print_stats(40)
    finally:
        store.close()
        if pg_store is not None:
            pg_store.drop_tenant()
    return medians


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()

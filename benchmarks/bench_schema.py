"""How long CircuitDB takes to apply a schema of n custom objects, and how that grows with n.

Per size, on a new store: the first apply (create every table and index), the same schema again
(a redeploy: nothing to do), and one more field in that schema. Each object has three text fields
and a reference to the one before it, as ``tests/circuitdb/test_schema_scale.py`` builds them
(that test counts the work; this script times it). The "of which SQL" column is the time spent in
the database driver; CPU is this process's.

    python benchmarks/bench_schema.py [--sizes 300 600 1200 1500] [--postgres URL]
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.circuitdb.test_schema_scale import wide_schema  # noqa: E402

from circuit_host.circuitdb import CircuitDB, FieldDef, FieldType, SchemaChanges, open_store  # noqa: E402
from circuit_host.circuitdb.schema import CEILING_CUSTOM_OBJECTS, SchemaLimits  # noqa: E402

LIMITS = SchemaLimits(max_custom_objects=CEILING_CUSTOM_OBJECTS)


class SqlClock:
    """Seconds spent inside the driver's execute, summed (a SQLAlchemy event pair)."""

    def __init__(self, db: CircuitDB) -> None:
        self.seconds = 0.0
        sa.event.listen(db.engine, "before_cursor_execute", self._before)
        sa.event.listen(db.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, *_args: Any) -> None:
        self.seconds += time.perf_counter() - conn.info.pop("bench_started")


def timed(db: CircuitDB, clock: SqlClock, step: Callable[[], None]) -> str:
    """Wall-clock seconds, of which in the driver, and this process's CPU seconds (steadier on a busy machine;
    on SQLite they include the database's work, on PostgreSQL not the server's)."""
    clock.seconds = 0.0
    started, cpu = time.perf_counter(), time.process_time()
    step()
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    return f"{total:7.2f} s ({clock.seconds:5.2f} s SQL, {cpu:6.2f} s CPU)"


def measure(target: str, n: int) -> str:
    db = open_store(target, tenant=f"bench-{uuid.uuid4().hex[:10]}", schema_limits=LIMITS)
    try:
        clock = SqlClock(db)
        changes = wide_schema(n)
        first = timed(db, clock, lambda: db.apply_schema(changes))
        again = timed(db, clock, lambda: db.apply_schema(changes))
        one = SchemaChanges(fields=(("Obj0__c", FieldDef("Late__c", FieldType.TEXT)),))
        field = timed(db, clock, lambda: db.apply_schema(one))
        return f"{n:6d}  first {first}   again {again}   one field {field}"
    finally:
        if db.dialect == "postgresql":
            db.drop_tenant()
        db.close()


def main(argv: list[str] | None = None) -> list[str]:
    """Prints (and returns) one line per backend and size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 600, 1200, 1500])
    parser.add_argument("--postgres", help="also measure on this PostgreSQL URL")
    args = parser.parse_args(argv)
    lines: list[str] = []
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy {sa.__version__}")
    for name, target in [("SQLite", None), *([("PostgreSQL", args.postgres)] if args.postgres else [])]:
        print(f"--- {name}")
        for n in args.sizes:
            if target is None:
                with tempfile.TemporaryDirectory() as folder:
                    lines.append(measure(str(Path(folder) / "records.sqlite3"), n))
            else:
                lines.append(measure(target, n))
            print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()

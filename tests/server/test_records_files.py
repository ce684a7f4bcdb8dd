"""On the embedded default each tenant environment has its own SQLite file, so no tenant waits on another.

SQLite locks a whole file for writing. The tests hold one environment's write lock (a transaction
left open, as a long execution does; or another process) and check that other tenants, and the
tenant's other environments, still write at once. With the old shared ``records.sqlite3`` these
writes waited for the lock and failed after the 30-second busy timeout.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from circuit_host.circuitdb.tables import tenant_prefix
from circuit_host.connectors.records import DmlOp
from circuit_host.execution.executions import ExecutionRecord
from circuit_host.server import ServerSettings
from circuit_host.server.state import ServerState

PROMPT_S = 5.0  # a write that is not waiting on anyone takes milliseconds; the busy timeout is 30 s


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    state = ServerState(ServerSettings(data_dir=tmp_path / "data", cache_dir=tmp_path / "modules"))
    for tenant_id in ("alpha", "beta"):
        state.platform.tenants.create_tenant(tenant_id.title(), tenant_id=tenant_id)
    yield state
    state.close()


def write_one(state: ServerState, tenant_id: str, env: str, name: str) -> ExecutionRecord:
    return state.apply_change(tenant_id, env, DmlOp.INSERT, "Contact", [{"LastName": name}], "api:Contact.insert")


def finishes_promptly(work: Callable[[], ExecutionRecord]) -> ExecutionRecord:
    """Runs ``work`` on a thread of its own; fails unless it ends within ``PROMPT_S``."""
    done: list[ExecutionRecord] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as exc:  # reported below
            failed.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(PROMPT_S)
    assert not worker.is_alive(), f"still waiting after {PROMPT_S} s: another tenant's lock held it up"
    assert not failed, failed
    assert time.monotonic() - started < PROMPT_S
    return done[0]


def test_a_long_write_in_one_environment_leaves_every_other_environment_writing(state: ServerState) -> None:
    write_one(state, "alpha", "production", "first")  # opens the store
    long_running = state.store("alpha", "production").begin()
    try:
        long_running.dml(DmlOp.INSERT, "Contact", [{"LastName": "in a long execution"}])  # holds its write lock
        other_tenant = finishes_promptly(lambda: write_one(state, "beta", "production", "other tenant"))
        other_env = finishes_promptly(lambda: write_one(state, "alpha", "dev", "other environment"))
        assert other_tenant.status == other_env.status == "ok"
        long_running.commit()
    finally:
        long_running.close()
    for tenant_id, env, count in (("alpha", "production", 2), ("beta", "production", 1), ("alpha", "dev", 1)):
        with state.store(tenant_id, env).begin() as tx:
            assert tx.query("SELECT COUNT() FROM Contact", {}, 10).total_size == count


def test_a_schema_change_in_one_environment_leaves_other_tenants_writing(state: ServerState) -> None:
    """A schema migration holds its environment's write lock for its whole length (a deploy)."""
    write_one(state, "alpha", "production", "first")
    migrating = state.store("alpha", "production").engine.connect()
    migrating.exec_driver_sql("BEGIN IMMEDIATE")  # as CircuitDB's migration takes it
    try:
        assert finishes_promptly(lambda: write_one(state, "beta", "production", "during a deploy")).status == "ok"
    finally:
        migrating.exec_driver_sql("ROLLBACK")
        migrating.close()


def test_a_store_opening_behind_another_process_lock_holds_up_no_other_tenant(state: ServerState) -> None:
    """Another process holds alpha's file while a server that has not opened alpha's store yet opens it:
    that waits for the lock on its own thread, and beta's writes go on meanwhile."""
    path = state.settings.records_file("alpha", "production")
    assert path is not None
    write_one(state, "alpha", "production", "made the file")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    fresh = ServerState(state.settings)
    opening = threading.Thread(target=lambda: fresh.store("alpha", "production"), daemon=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        opening.start()
        time.sleep(0.2)  # the opening thread is waiting on alpha's lock now
        assert opening.is_alive()
        assert finishes_promptly(lambda: write_one(fresh, "beta", "production", "meanwhile")).status == "ok"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        opening.join(PROMPT_S)
        fresh.close()
    assert not opening.is_alive()


def test_the_files_are_named_from_validated_ids_and_private(state: ServerState, tmp_path: Path) -> None:
    write_one(state, "alpha", "staging", "x")
    data = tmp_path / "data"
    path = data / "records" / "alpha" / "staging.sqlite3"
    assert state.settings.records_file("alpha", "staging") == path and path.is_file()
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert (data / "records").stat().st_mode & 0o777 == 0o700
    assert not (data / "records.sqlite3").exists()
    with state.store("alpha", "staging").engine.connect() as conn:
        tables = [n for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert all(t.startswith(tenant_prefix("alpha:staging")) for t in tables if t.startswith("cdb_"))
    for tenant_id, env in (("../alpha", "dev"), ("alpha\n", "dev"), ("Alpha", "dev"), ("alpha", "qa"), ("", "dev")):
        with pytest.raises(ValueError, match="not a tenant environment"):
            state.settings.records_file(tenant_id, env)


def open_record_files(data_dir: Path) -> set[str]:
    """The records files this process holds descriptors on (the database files, not -wal or -shm)."""
    held = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith(str(data_dir)) and target.endswith(".sqlite3") and "platform" not in target:
            held.add(target)
    return held


def test_only_the_most_recently_used_record_files_keep_connections_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    state = ServerState(ServerSettings(data_dir=data, cache_dir=tmp_path / "modules", max_open_record_files=2))
    try:
        tenants = [f"t{n}" for n in range(6)]
        for tenant_id in tenants:
            state.platform.tenants.create_tenant(tenant_id.upper(), tenant_id=tenant_id)
            assert write_one(state, tenant_id, "dev", f"lead of {tenant_id}").status == "ok"
        held = open_record_files(data)
        assert 0 < len(held) <= 2, held  # six files were used; one descriptor set each before
        assert all("t4" in path or "t5" in path for path in held), held
        for tenant_id in tenants:  # every store still works: a closed pool connects again
            with state.store(tenant_id, "dev").begin() as tx:
                names = [r["LastName"] for r in tx.query("SELECT LastName FROM Contact", {}, 10).records]
            assert names == [f"lead of {tenant_id}"]
        assert len(open_record_files(data)) <= 2
    finally:
        state.close()

"""A PostgreSQL cluster of one test's own, which the test may stop and restart.

The shared server at 127.0.0.1:5432 serves every test running in parallel, so a test that
restarts PostgreSQL gets its own: ``initdb`` into a fresh directory, ``pg_ctl`` on a free
loopback port with trust authentication, removed afterwards. PostgreSQL refuses to run as
root, so as root the binaries run as the ``postgres`` OS user (``runuser``) in a directory it owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")
BINARIES = ("initdb", "pg_ctl", "postgres")


def find_binaries() -> dict[str, str] | str:
    """Where initdb, pg_ctl and postgres are, or why they cannot be used."""
    found: dict[str, str] = {}
    for name in BINARIES:
        path = shutil.which(name) or next((f"{d}/{name}" for d in BIN_DIRS if os.access(f"{d}/{name}", os.X_OK)), None)
        if path is None:
            return f"{name} not found on PATH or in {', '.join(BIN_DIRS)}"
        found[name] = path
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres OS user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root, and runuser is missing"
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """``initdb`` + ``pg_ctl`` in a temporary directory; ``url()`` for its ``postgres`` database."""

    def __init__(self, binaries: dict[str, str]) -> None:
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="circuit-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-locale"
        )

    def _run(self, binary: str, *args: str, timeout: float = 120) -> None:
        command: Sequence[str] = [self.binaries[binary], *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are cut and open transactions rolled back, as in a real restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (fast), stay down ``down_s`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def wait_ready(self, timeout: float = 30) -> None:
        engine = sa.create_engine(self.url(), connect_args={"connect_timeout": 2})
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    with engine.connect() as conn:
                        conn.exec_driver_sql("SELECT 1")
                    return
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            engine.dispose()

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)

    def close(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

"""``circuit worker``: run the server's jobs on this machine, without serving HTTP.

It opens what ``circuit serve`` opens (the platform with its master key, the runtime), configured the
same way (``CIRCUIT_*`` variables, flags overriding them), so that
every job kind the server handles runs here too, and picks the queue by the database URL:
SQLite -> the embedded queue, PostgreSQL -> Procrastinate.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any

from ..errors import Rejected
from ..settings import HostSettings, configure_logging
from .server_commands import DEFAULT_DATA_DIR


def cmd_worker(args: argparse.Namespace, settings: HostSettings) -> int:
    from ..server import ServerSettings
    from ..server.state import ServerState

    flags = {"data_dir": args.data_dir, "db_url": args.db, "job_workers": args.concurrency}
    server_settings = ServerSettings.from_environment(os.environ, flags, data_dir=DEFAULT_DATA_DIR)
    configure_logging(args.log_level)
    if server_settings.job_workers < 1:
        raise Rejected("circuit worker runs at least one job at a time: --concurrency 1 or more")
    stopping = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.set())
    state = ServerState(server_settings)
    try:
        state.jobs.start()
        state.crm_outbox.start()  # CRM writes of the executions it runs (and any server's: they share leases)
        print(
            f"circuit worker: {state.jobs.queue.backend} queue, {server_settings.job_workers} at a time, "
            f"kinds {', '.join(sorted(state.jobs.handlers))}",
            flush=True,
        )
        stopping.wait()
        print("circuit worker: stopping after the running jobs", flush=True)
    finally:
        state.close()
    return 0


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run the server's jobs here (no HTTP); SIGTERM stops it gracefully")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="jobs run at once, in threads (default $CIRCUIT_JOB_WORKERS or 2)"
    )
    worker.add_argument("--data-dir", type=Path, default=None, help="default $CIRCUIT_DATA_DIR or .circuit")
    worker.add_argument("--db", default=None, help="the servers' postgresql:// URL (default: SQLite in --data-dir)")
    worker.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    worker.set_defaults(func=cmd_worker)

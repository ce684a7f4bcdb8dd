"""``circuit serve --workers N``: N server processes behind one listening socket.

Python runs one thread of circuit code at a time, so one process uses about one core; uvicorn's
supervisor starts N processes (``spawn``) that accept on the same socket. The parent bootstraps
(tenant, admin key, master key) and closes its own state before they start; each process builds its
``ServerState`` from the same resolved settings, which travel in one environment variable (never the
master key: each process finds it as the parent did, in ``CIRCUIT_MASTER_KEY`` or the key file).

What several processes share is already shared through the databases: deployments (each process
rebuilds its registry when an environment's generation moves), executions (the live tail reads them),
jobs (each process runs ``job_workers`` threads; ticks and claims are settled in the queue) and the
CRM outbox. What stays per process: admission bounds (``max_concurrent_executions`` is per process)
and the failed-authentication counter. Metrics are summed across processes through
prometheus_client's multi-process directory, which the parent sets up.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from .settings import ServerSettings

SETTINGS_VARIABLE = "_CIRCUIT_SERVE_SETTINGS"
"""The parent's resolved settings, as JSON, for each worker process (no secrets)."""


def settings_for_workers(settings: ServerSettings) -> dict[str, Any]:
    """The settings as each process gets them: the parent's, with a metrics directory shared by all."""
    dumped: dict[str, Any] = settings.model_dump(mode="json", exclude={"master_key"})
    observability = dumped["observability"]
    if observability.get("metrics_multiprocess_dir") is None:
        observability["metrics_multiprocess_dir"] = str(settings.data_dir / "metrics")
    return dumped


def prepare_environment(settings: ServerSettings) -> None:
    """Set what the worker processes read at start: their settings and prometheus_client's directory
    (emptied: counters of an earlier run must not be summed into this one)."""
    dumped = settings_for_workers(settings)
    directory = Path(dumped["observability"]["metrics_multiprocess_dir"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    os.environ[SETTINGS_VARIABLE] = json.dumps(dumped)


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's ``factory``): its own state, closed at shutdown."""
    from ..observability import install_tracer_provider, tracer_provider_from_environment
    from ..settings import configure_logging
    from .app import create_app

    settings = ServerSettings(**json.loads(os.environ[SETTINGS_VARIABLE]))
    observability = settings.observability
    configure_logging(observability.log_level, json_lines=observability.log_format == "json")
    provider = tracer_provider_from_environment(os.environ)
    if provider is not None:
        install_tracer_provider(provider)
    return create_app(settings)  # no state given: the app makes its own and closes it in its lifespan

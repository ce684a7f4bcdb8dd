"""The FastAPI application: one router per resource, every route tenant-scoped through ``auth``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import problems
from .limits_middleware import MaxBodySize
from .ratelimit import RateLimiter
from .routers import (
    batches,
    bundles,
    credentials,
    dashboard,
    environments,
    executions,
    hooks,
    inbox,
    jobs,
    keys,
    outbox,
    records,
    stats,
    tenant_settings,
    whoami,
)
from .routers.execution_stream import stream_router
from .settings import ServerSettings
from .state import ServerState


def create_app(settings: ServerSettings, state: ServerState | None = None) -> FastAPI:
    """The server app; pass ``state`` to share one (tests, ``circuit serve`` after bootstrapping)."""
    server_state = state or ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server_state.inbox.recover()  # stored webhooks whose apply job is gone get one (server/webhook_inbox.py)
        server_state.jobs.start()  # job worker threads and periodic jobs (server/server_jobs.py)
        server_state.crm_outbox.start()  # sends committed CRM writes (server/crm_outbox.py)
        yield
        if state is None:
            server_state.close()

    app = FastAPI(
        title="Circuit Script host",
        version="1.0.0",
        description="CRM webhooks in, sandboxed circuits run, deploys managed, executions stored.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by routers/dashboard.py: /docs works offline
        redoc_url=None,
    )
    app.state.circuit = server_state
    app.state.limiter = RateLimiter()
    problems.install(app)
    for router in (
        stream_router(),  # /v1/executions/stream, before /v1/executions/{execution_id} matches it
        hooks.router,
        inbox.router,
        records.router,
        bundles.router,
        environments.router,
        executions.router,
        keys.router,
        tenant_settings.router,
        credentials.router,
        outbox.router,
        jobs.router,
        batches.router,
        stats.router,
        whoami.router,
    ):
        app.include_router(router)
    dashboard.install(app)  # /dashboard/ and /docs, from the package

    app.add_middleware(
        MaxBodySize,
        max_bytes=settings.max_request_bytes,
        per_path={"/v1/bundles": max(settings.max_request_bytes, server_state.platform.bundles.max_bundle_bytes)},
    )
    server_state.telemetry.install(app)  # /metrics, /livez, /healthz, /readyz; request ids, spans, metrics (outermost)
    return app

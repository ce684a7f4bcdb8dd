"""Liveness and readiness, for an orchestrator's probes.

``/livez`` (``/healthz`` is its old name) answers on the event loop: it never waits for the thread
pool, so a server busy with slow executions still proves it is alive. ``/readyz`` runs its checks
(platform database reachable, its migrations current, and whatever else registered one: job
workers alive) on threads of its own limiter, with a deadline, and answers 503 naming the failing
checks. Answers carry check names and short reasons, never a URL or a credential.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio
import sqlalchemy as sa
import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from ..migrations import MigratedSchema, current_revisions, head_revisions

ReadinessCheck = Callable[[], str | None]
"""A readiness check: None when ready, else a short reason (no secrets: it is answered unauthenticated)."""

READINESS_TIMEOUT_S = 5.0
log = structlog.get_logger("circuit.probes")


def database_reachable(engine: Engine) -> ReadinessCheck:
    def check() -> str | None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None

    return check


def migrations_current(engine: Engine, schema: MigratedSchema) -> ReadinessCheck:
    """Behind when another process has not yet upgraded (or a newer version has): not ready."""

    def check() -> str | None:
        current, heads = current_revisions(engine, schema), head_revisions(schema)
        if current == heads:
            return None
        return f"{schema.name} is at {sorted(current) or 'no revision'}, this version needs {sorted(heads)}"

    return check


def _run(name: str, check: ReadinessCheck) -> str:
    try:
        problem = check()
    except Exception as exc:
        log.warning("readiness check failed", check=name, error=f"{type(exc).__name__}: {exc}")
        return f"failed: {type(exc).__name__}"
    return "ok" if problem is None else f"failed: {problem}"


async def readiness(
    checks: Mapping[str, ReadinessCheck], limiter: anyio.CapacityLimiter
) -> tuple[bool, dict[str, str]]:
    """Every check's result ("ok" or "failed: why"); a check still running at the deadline fails."""
    results = dict.fromkeys(checks, "failed: no answer within the deadline")

    async def one(name: str, check: ReadinessCheck) -> None:
        results[name] = await anyio.to_thread.run_sync(_run, name, check, limiter=limiter, abandon_on_cancel=True)

    with anyio.move_on_after(READINESS_TIMEOUT_S):
        async with anyio.create_task_group() as group:
            for name, check in checks.items():
                group.start_soon(one, name, check)
    return all(result == "ok" for result in results.values()), results


def probes_router(checks: Callable[[], Mapping[str, ReadinessCheck]]) -> APIRouter:
    router = APIRouter(tags=["health"])
    limiter = anyio.CapacityLimiter(4)  # readiness never queues behind executions on the default pool

    @router.get("/livez", summary="Liveness: answered on the event loop")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/healthz", summary="Liveness (the old name of /livez)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: database, migrations, workers; 503 names what failed")
    async def readyz() -> JSONResponse:
        ready, results = await readiness(checks(), limiter)
        failing = [name for name, result in results.items() if result != "ok"]
        body = {"status": "ready" if ready else "not ready", "checks": results, "failing": failing}
        return JSONResponse(body, status_code=200 if ready else 503)

    return router

"""Figures over the caller's stored executions, for the dashboard's overview (``platform/execution_stats.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ...platform.execution_stats import ExecutionStats
from ..auth import Caller, require, state_of
from ..state import ServerState

router = APIRouter(prefix="/v1/stats", tags=["executions"])
Window = Literal["1h", "24h"]
# Each window's length and bucket: 60 one-minute buckets, or 96 of a quarter-hour.
WINDOWS: dict[str, tuple[timedelta, int]] = {"1h": (timedelta(hours=1), 60), "24h": (timedelta(days=1), 900)}


class BucketView(BaseModel):
    start: datetime
    env: str
    circuit: str
    ok: int
    failed: int = Field(description="executions that ended other than ok")


class CircuitStatsView(BaseModel):
    env: str
    circuit: str = Field(description="the environment's deployed circuits, as the stored execution names them")
    executions: int
    failed: int
    error_rate: float = Field(description="failed / executions")
    by_status: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    headroom: dict[str, float] = Field(
        description="per governor resource, the highest fraction of its limit one execution used (1 = at the limit)"
    )


class StatsView(BaseModel):
    window: Window
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: list[BucketView] = Field(description="executions per bucket, environment and circuit; empty ones left out")
    circuits: list[CircuitStatsView]
    sampled: bool = Field(description="percentiles and headroom come from the newest 20,000 executions of the window")


@router.get("", response_model=StatsView, summary="Executions, error rates, latency percentiles and headroom")
def stats(
    window: Window = "1h", caller: Caller = Depends(require("read")), state: ServerState = Depends(state_of)
) -> StatsView:
    length, bucket_seconds = WINDOWS[window]
    figures = ExecutionStats(state.platform.database).window(caller.tenant_id, length, bucket_seconds)
    return StatsView(
        window=window,
        since=figures.since,
        until=figures.until,
        bucket_seconds=figures.bucket_seconds,
        buckets=[
            BucketView(start=b.start, env=b.env, circuit=b.circuit, ok=b.ok, failed=b.failed) for b in figures.buckets
        ],
        circuits=[
            CircuitStatsView(
                env=c.env,
                circuit=c.circuit,
                executions=c.executions,
                failed=c.failed,
                error_rate=round(c.error_rate, 4),
                by_status=c.by_status,
                p50_ms=c.p50_ms,
                p95_ms=c.p95_ms,
                p99_ms=c.p99_ms,
                headroom=c.headroom,
            )
            for c in figures.circuits
        ],
        sampled=figures.sampled,
    )

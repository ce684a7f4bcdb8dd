"""Figures over a tenant's stored executions for a time window: executions per time bucket, error
rates, latency percentiles and governor headroom per environment and circuit.

Counts are exact (``GROUP BY`` in the database, on the tenant-and-time index). Percentiles and
headroom need each execution's duration and usage, so they are computed here over the newest
``sample_limit`` executions of the window; ``sampled`` says when the window held more.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .database import PlatformDatabase

SAMPLE_LIMIT = 20_000
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    env: str
    circuit: str
    ok: int
    failed: int


@dataclass
class CircuitFigures:
    """One environment's circuit over the window. Latencies in milliseconds, nearest rank."""

    env: str
    circuit: str
    executions: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    headroom: dict[str, float] = field(default_factory=dict)  # resource -> the highest fraction of its limit used

    @property
    def failed(self) -> int:
        return self.executions - self.by_status.get("ok", 0)

    @property
    def error_rate(self) -> float:
        return self.failed / self.executions if self.executions else 0.0


@dataclass(frozen=True)
class WindowFigures:
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: list[Bucket]
    circuits: list[CircuitFigures]
    sampled: bool  # percentiles and headroom come from the newest ``sample_limit`` executions only


def percentile(sorted_values: list[float], p: int) -> float | None:
    """Nearest-rank percentile of ascending values: a duration some execution really took."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


class ExecutionStats:
    def __init__(self, db: PlatformDatabase, sample_limit: int = SAMPLE_LIMIT) -> None:
        self._db = db
        self.sample_limit = sample_limit

    def window(self, tenant_id: str, length: timedelta, bucket_seconds: int) -> WindowFigures:
        """The figures of the ``length`` up to now, bucketed by ``bucket_seconds`` (aligned to the epoch)."""
        until = self._db.now()
        since = until - length
        e = self._db.tables.executions
        in_window = (e.c.tenant_id == tenant_id) & (e.c.started_at >= since) & (e.c.started_at < until)
        bucket = self._bucket_of(e.c.started_at, bucket_seconds).label("bucket")
        failed = sa.func.sum(sa.case((e.c.status == "ok", 0), else_=1)).label("failed")
        per_bucket = (
            sa.select(bucket, e.c.env, e.c.circuit, sa.func.count().label("n"), failed)
            .where(in_window)
            .group_by(bucket, e.c.env, e.c.circuit)
            .order_by(bucket)
        )
        per_status = (
            sa.select(e.c.env, e.c.circuit, e.c.status, sa.func.count().label("n"))
            .where(in_window)
            .group_by(e.c.env, e.c.circuit, e.c.status)
        )
        newest = (
            sa.select(e.c.env, e.c.circuit, e.c.duration_ms, e.c.usage)
            .where(in_window)
            .order_by(e.c.started_at.desc())
            .limit(self.sample_limit + 1)
        )
        with self._db.read() as conn:
            bucket_rows = conn.execute(per_bucket).all()
            status_rows = conn.execute(per_status).all()
            sample = conn.execute(newest).all()
        buckets = [
            Bucket(
                datetime.fromtimestamp(int(r.bucket) * bucket_seconds, until.tzinfo),
                r.env,
                r.circuit,
                int(r.n) - int(r.failed),
                int(r.failed),
            )
            for r in bucket_rows
        ]
        figures: dict[tuple[str, str], CircuitFigures] = {}
        for r in status_rows:
            one = figures.setdefault((r.env, r.circuit), CircuitFigures(r.env, r.circuit))
            one.by_status[r.status] = int(r.n)
            one.executions += int(r.n)
        sampled = len(sample) > self.sample_limit
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in sample[: self.sample_limit]:
            key = (r.env, r.circuit)
            durations[key].append(float(r.duration_ms))
            one = figures.setdefault(key, CircuitFigures(r.env, r.circuit))
            _raise_headroom(one.headroom, r.usage)
        for key, values in durations.items():
            values.sort()
            one = figures[key]
            one.p50_ms, one.p95_ms, one.p99_ms = (percentile(values, p) for p in PERCENTILES)
        ordered = sorted(figures.values(), key=lambda f: (f.env, f.circuit))
        return WindowFigures(since, until, bucket_seconds, buckets, ordered, sampled)

    def _bucket_of(self, column: Any, seconds: int) -> Any:
        """The bucket number of a start time: whole seconds since the epoch, divided by ``seconds``."""
        if self._db.dialect == "sqlite":  # stored as naive UTC text; strftime('%s') reads it as UTC
            return sa.cast(sa.func.strftime("%s", column), sa.Integer) / seconds
        return sa.func.floor(sa.extract("epoch", column) / seconds)


def _raise_headroom(headroom: dict[str, float], usage_json: str) -> None:
    """Keep, per resource, the highest fraction of its limit that this execution used."""
    try:
        usage = json.loads(usage_json)
    except ValueError:
        return
    if not isinstance(usage, dict):
        return
    for resource, figures in usage.items():
        if not isinstance(figures, dict):
            continue
        used, limit = figures.get("used"), figures.get("limit")
        if isinstance(used, int | float) and isinstance(limit, int | float) and limit > 0:
            fraction = round(used / limit, 4)
            if fraction > headroom.get(resource, -1.0):
                headroom[resource] = fraction

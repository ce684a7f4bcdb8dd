"""Every metric the host exports, defined once on a registry of its own.

The README's reference table and the Grafana dashboard are checked against ``CircuitMetrics``
(``tests/observability``), so a metric is named here and nowhere else is it invented. Labels are
bounded: tenants and environments are the platform's, circuits are what a tenant deployed, kinds,
statuses, outcomes and reasons are closed sets, routes are templates; never an execution, record
or delivery id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds, from a fast host call to an execution at the default 10 s deadline and beyond.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Fractions of a limit: where a circuit stands against its governor budget.
RATIO_BUCKETS = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)


class CircuitMetrics:
    """The host's metrics on ``registry``; one instance per server (tests make many)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        execution = ["tenant", "environment", "circuit"]
        self.executions = Counter(
            "circuit_executions",
            "Executions finished, by how they ended (ok, error, limit_exceeded, timeout, trap, host_error).",
            [*execution, "trigger_kind", "status"],
            registry=registry,
        )
        self.execution_duration = Histogram(
            "circuit_execution_duration_seconds",
            "Wall time of one execution, triggers included.",
            execution,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.host_calls = Counter(
            "circuit_host_calls",
            "Host calls made by guests and the host (query, dml, callout), by outcome (ok, error).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.host_call_duration = Histogram(
            "circuit_host_call_duration_seconds",
            "Time spent in one host call.",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.trigger_runs = Counter(
            "circuit_trigger_runs",
            "Triggers run by DML (a guest's or a webhook's), by outcome (ok, error, limit_exceeded, ...).",
            ["outcome"],
            registry=registry,
        )
        self.governor_usage = Histogram(
            "circuit_governor_usage_ratio",
            "Per execution and resource, the fraction of the governor limit used (1 = at the limit).",
            ["resource"],
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self.webhooks = Counter(
            "circuit_webhooks",
            "Webhook deliveries by source and outcome (accepted, duplicate, refused); reason says why one was refused.",
            ["source", "outcome", "reason"],
            registry=registry,
        )
        deploys = ["tenant", "environment"]
        self.deploys = Counter("circuit_deploys", "Versions deployed to an environment.", deploys, registry=registry)
        self.promotions = Counter(
            "circuit_promotions", "Promotions into an environment (the target).", deploys, registry=registry
        )
        self.rollbacks = Counter("circuit_rollbacks", "Rollbacks in an environment.", deploys, registry=registry)
        self.gate_verdicts = Counter(
            "circuit_gate_verdicts",
            "Deploy-gate verdicts (passed, refused) on deploys and promotions into staging and production.",
            [*deploys, "verdict"],
            registry=registry,
        )
        self.http_requests = Counter(
            "circuit_http_requests",
            "HTTP requests answered, by method, route template (never the raw path) and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "circuit_http_request_duration_seconds",
            "Time to answer one HTTP request.",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )


@dataclass(frozen=True)
class JobCount:
    """How many jobs of one queue are in one state (``todo``, ``doing``, ``failed``...)."""

    queue: str
    state: str
    count: int


JobCounts = Callable[[], Iterable[JobCount]]


class JobsCollector(Collector):
    """``circuit_jobs{queue,state}``, asked of the job queue at each scrape (the database is the truth,
    so every process reports the same figures and the gauge is never summed across workers)."""

    def __init__(self, counts: JobCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("circuit_jobs", "Jobs in the queue, by queue and state.", labels=["queue", "state"])
        for job in self._counts():
            family.add_metric([job.queue, job.state], job.count)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("circuit_jobs", "Jobs in the queue, by queue and state.", labels=["queue", "state"])

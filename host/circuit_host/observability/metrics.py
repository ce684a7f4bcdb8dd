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


@dataclass(frozen=True)
class MetricReference:
    """One exported metric as the README's reference table and the Grafana dashboard name it."""

    name: str  # as exposed: counters end in ``_total``
    type: str  # counter, histogram, gauge
    labels: tuple[str, ...]
    help: str


class CircuitMetrics:
    """The host's metrics on ``registry``; one instance per server (tests make many).

    ``reference`` lists every metric, ``circuit_jobs`` included (exported once the job queue
    registers its counts, ``Telemetry.count_jobs``).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reference: list[MetricReference] = []
        execution = ("tenant", "environment", "circuit")
        deploys = ("tenant", "environment")
        self.executions = self._counter(
            "circuit_executions",
            "Executions finished, by how they ended (ok, error, limit_exceeded, timeout, trap).",
            (*execution, "trigger_kind", "status"),
        )
        self.execution_duration = self._histogram(
            "circuit_execution_duration_seconds", "Wall time of one execution, triggers included.", execution
        )
        self.host_calls = self._counter(
            "circuit_host_calls",
            "Host calls made by guests and the host (query, dml, callout), by outcome (ok, error).",
            ("kind", "outcome"),
        )
        self.host_call_duration = self._histogram(
            "circuit_host_call_duration_seconds", "Time spent in one host call.", ("kind",)
        )
        self.trigger_runs = self._counter(
            "circuit_trigger_runs",
            "Triggers run by DML (a guest's or a webhook's), by outcome (ok, error, limit_exceeded, timeout, trap).",
            ("outcome",),
        )
        self.governor_usage = self._histogram(
            "circuit_governor_usage_ratio",
            "Per execution and resource, the fraction of the governor limit used (1 = at the limit).",
            ("resource",),
            RATIO_BUCKETS,
        )
        self.webhooks = self._counter(
            "circuit_webhooks",
            "Webhook deliveries by source and outcome (accepted, duplicate, refused); reason says why one was refused.",
            ("source", "outcome", "reason"),
        )
        self.deploys = self._counter("circuit_deploys", "Versions deployed to an environment.", deploys)
        self.promotions = self._counter("circuit_promotions", "Promotions into an environment (the target).", deploys)
        self.rollbacks = self._counter("circuit_rollbacks", "Rollbacks in an environment.", deploys)
        self.gate_verdicts = self._counter(
            "circuit_gate_verdicts",
            "Deploy-gate verdicts (passed, refused) on deploys and promotions into staging and production.",
            (*deploys, "verdict"),
        )
        self.http_requests = self._counter(
            "circuit_http_requests",
            "HTTP requests answered, by method, route template (never the raw path) and status code.",
            ("method", "route", "status"),
        )
        self.http_request_duration = self._histogram(
            "circuit_http_request_duration_seconds", "Time to answer one HTTP request.", ("method", "route")
        )
        self.reference.append(MetricReference(JOBS_METRIC, "gauge", JOBS_LABELS, JOBS_HELP))

    def _counter(self, name: str, help: str, labels: tuple[str, ...]) -> Counter:
        self.reference.append(MetricReference(f"{name}_total", "counter", labels, help))
        return Counter(name, help, labels, registry=self.registry)

    def _histogram(
        self, name: str, help: str, labels: tuple[str, ...], buckets: tuple[float, ...] = DURATION_BUCKETS
    ) -> Histogram:
        self.reference.append(MetricReference(name, "histogram", labels, help))
        return Histogram(name, help, labels, buckets=buckets, registry=self.registry)


JOBS_METRIC = "circuit_jobs"
JOBS_LABELS = ("queue", "state")
JOBS_HELP = "Jobs in the queue, by queue and state."


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
        family = GaugeMetricFamily(JOBS_METRIC, JOBS_HELP, labels=list(JOBS_LABELS))
        for job in self._counts():
            family.add_metric([job.queue, job.state], job.count)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(JOBS_METRIC, JOBS_HELP, labels=list(JOBS_LABELS))

"""The server's observability in one object: metrics, the tracer, probes and their HTTP routes.

``ServerState`` holds one ``Telemetry``; the execution path asks it for an ``ExecutionObserver``
labelled for the tenant environment, the deploy path and webhook intake count through it, and
``install`` adds ``/metrics``, ``/livez``, ``/healthz``, ``/readyz`` and the request middleware to the
app. Other parts plug in without importing this package's internals: ``add_readiness_check``
(job workers alive) and ``count_jobs`` (queue depth per state).
"""

from __future__ import annotations

import ipaddress

import anyio
import structlog
from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from ..errors import Rejected
from ..execution.execution_observer import ExecutionObserver
from ..migrations import MigratedSchema
from .metrics import CircuitMetrics, JobCounts, JobsCollector
from .observability_settings import ObservabilitySettings
from .observed_executions import ExecutionLabels, ObservedExecutions
from .probes import ReadinessCheck, database_reachable, migrations_current, probes_router
from .request_observation import ObservedRequests
from .tracing import TRACER_NAME

log = structlog.get_logger("circuit.server")
WEBHOOK_OUTCOMES = frozenset({"accepted", "duplicate", "refused"})


def trigger_kind(trigger: str) -> str:
    """``ghl:Contact.update`` -> ``ghl``: the source of an execution's event, a closed set."""
    return trigger.partition(":")[0] or "unknown"


class Telemetry:
    def __init__(self, settings: ObservabilitySettings, tracer_provider: TracerProvider | None = None) -> None:
        """``tracer_provider`` defaults to the process's (set by ``circuit serve`` when ``OTEL_*`` ask for
        tracing, else the API's no-op); tests pass one with an in-memory exporter."""
        self.settings = settings
        if settings.metrics_multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", False):
            raise Rejected(
                "metrics_multiprocess_dir is set but prometheus_client is not in multi-process mode: set "
                f"PROMETHEUS_MULTIPROC_DIR={settings.metrics_multiprocess_dir} in every worker's environment"
            )
        self.registry = CollectorRegistry()
        self.metrics = CircuitMetrics(self.registry)
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)
        self._networks = [ipaddress.ip_network(n, strict=False) for n in settings.metrics_allowed_networks]
        self._readiness: dict[str, ReadinessCheck] = {}
        self._collectors: list[Collector] = []

    # -- what the rest of the server reports ---------------------------------------------------

    def execution_observer(self, tenant: str, environment: str, circuit: str, trigger: str) -> ExecutionObserver:
        return ObservedExecutions(
            self.metrics, self.tracer, ExecutionLabels(tenant, environment, circuit, trigger_kind(trigger))
        )

    def count_webhook(self, source: str, outcome: str, reason: str = "") -> None:
        """``source`` must be a registered source (or ``unknown``); ``reason`` a ``WebhookRejected`` reason."""
        if outcome not in WEBHOOK_OUTCOMES:
            raise ValueError(f"webhook outcome {outcome!r} is not one of {sorted(WEBHOOK_OUTCOMES)}")
        self.metrics.webhooks.labels(source, outcome, reason).inc()

    def count_deploy(self, action: str, tenant: str, environment: str) -> None:
        """``action``: ``deploy``, ``promotion`` (``environment`` is the target) or ``rollback``."""
        counters = {"deploy": self.metrics.deploys, "promotion": self.metrics.promotions}
        counters["rollback"] = self.metrics.rollbacks
        if action not in counters:
            raise ValueError(f"deploy action {action!r} is not one of {sorted(counters)}")
        counters[action].labels(tenant, environment).inc()

    def count_gate_verdict(self, tenant: str, environment: str, passed: bool) -> None:
        self.metrics.gate_verdicts.labels(tenant, environment, "passed" if passed else "refused").inc()

    # -- registration points for other parts -------------------------------------------------

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """``/readyz`` runs ``check`` too (e.g. ``workers``: job workers alive)."""
        self._readiness[name] = check

    def watch_database(self, engine: Engine, schema: MigratedSchema) -> None:
        """``/readyz`` checks that the platform database answers and its migrations are current."""
        self.add_readiness_check("database", database_reachable(engine))
        self.add_readiness_check("migrations", migrations_current(engine, schema))

    def count_jobs(self, counts: JobCounts) -> None:
        """Export ``circuit_jobs{queue,state}`` from ``counts``, asked at each scrape."""
        collector = JobsCollector(counts)
        self.registry.register(collector)
        self._collectors.append(collector)

    # -- HTTP ----------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The scrape body: this process's registry, or every worker's files in multi-process mode."""
        directory = self.settings.metrics_multiprocess_dir
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        for collector in self._collectors:  # asked of the database, the same in every process
            registry.register(collector)
        return generate_latest(registry)

    def may_scrape(self, client_host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(client_host or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    def install(self, app: FastAPI) -> None:
        """Add the probes, ``/metrics`` and the request middleware (outermost) to ``app``."""
        app.include_router(probes_router(lambda: dict(self._readiness)))
        scrapes = anyio.CapacityLimiter(1)  # off the event loop (collectors may ask a database), off the busy pool

        @app.get("/metrics", tags=["health"], summary="Prometheus metrics (from allowed networks only)")
        async def metrics(request: Request) -> Response:
            client = request.client.host if request.client else None
            if not self.may_scrape(client):
                log.warning("metrics scrape refused", client=client)
                return Response("metrics are not served to this address\n", status_code=403, media_type="text/plain")
            body = await anyio.to_thread.run_sync(self.exposition, limiter=scrapes)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        app.add_middleware(ObservedRequests, metrics=self.metrics, tracer=self.tracer)

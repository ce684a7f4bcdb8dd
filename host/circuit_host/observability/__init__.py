"""Seeing what the server does: Prometheus metrics, OpenTelemetry traces, structured logs, probes.

The execution path reports through the ``ExecutionObserver`` port (``execution/execution_observer.py``);
everything else through ``Telemetry``. See README.md for the metrics reference and set-up.
"""

from .metrics import CircuitMetrics, JobCount
from .observability_settings import ObservabilitySettings
from .observed_executions import ExecutionLabels, ObservedExecutions
from .probes import ReadinessCheck
from .telemetry import Telemetry
from .tracing import install_tracer_provider, tracer_provider_from_environment

__all__ = [
    "CircuitMetrics",
    "ExecutionLabels",
    "JobCount",
    "ObservabilitySettings",
    "ObservedExecutions",
    "ReadinessCheck",
    "Telemetry",
    "install_tracer_provider",
    "tracer_provider_from_environment",
]

"""How the server is observed: log format and level, who may scrape ``/metrics``, multi-process metrics.

Built at the edge with the rest of ``ServerSettings`` (``settings.observability``). Tracing is not
here: it is configured by the standard ``OTEL_*`` environment variables, read once at start-up
(``tracing.tracer_provider_from_environment``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Loopback and the private ranges: a scraper inside the deployment's network, never the internet.
DEFAULT_METRICS_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


class ObservabilitySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    log_format: Literal["console", "json"] = Field(
        "console", description="`json`: one JSON object per line (for log shippers); `console` for people."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="The server's log level.")
    metrics_allowed_networks: tuple[str, ...] = Field(
        DEFAULT_METRICS_NETWORKS,
        description="Client networks (CIDR) that may read /metrics; others get 403. `0.0.0.0/0` and `::/0` open it.",
    )
    metrics_multiprocess_dir: Path | None = Field(
        None,
        description="prometheus_client's multi-process directory: set it (and PROMETHEUS_MULTIPROC_DIR, to the "
        "same path, in every worker's environment) when several processes serve behind one scrape address.",
    )

    @field_validator("metrics_allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"metrics_allowed_networks: {network!r} is not a network: {exc}") from None
        return value

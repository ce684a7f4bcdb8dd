"""Host configuration, built once at the edge (CLI, server start-up) and passed down."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "circuit-script" / "modules"


class HostSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    cache_dir: Path | None = None
    log_level: str = "warning"


def configure_logging(level: str, json_lines: bool = False) -> None:
    """Send structlog output to stderr so stdout stays clean for results (``--json``).

    Every line carries what is bound in structlog's contextvars (the server binds the request id,
    tenant, environment and execution id). ``json_lines``: one JSON object per line, for log shippers;
    otherwise the console format, for people.
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.dict_tracebacks] if json_lines else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )

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


def configure_logging(level: str) -> None:
    """Send structlog output to stderr so stdout stays clean for results (``--json``)."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )

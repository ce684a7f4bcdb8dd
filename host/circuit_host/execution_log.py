"""The debug log of one execution: structured entries first, rendered text second."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

LEVELS = ("debug", "info", "warn", "error")


@dataclass(frozen=True)
class LogEntry:
    at_ms: float
    level: str
    message: str
    source: str  # "guest" for log.write, "host" for the runtime's own events

    def as_dict(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "level": self.level, "message": self.message, "source": self.source}


@dataclass
class ExecutionLog:
    """Collects an execution's log and mirrors every entry to structlog."""

    execution_id: str
    entries: list[LogEntry] = field(default_factory=list)
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._logger = structlog.get_logger("circuit.execution").bind(execution_id=self.execution_id)

    def write(self, level: str, message: str, source: str = "guest") -> None:
        entry = LogEntry(round((time.monotonic() - self._started) * 1000, 3), level, message, source)
        self.entries.append(entry)
        if source == "guest":
            # Guest lines belong to the execution's own log; operators see them at debug level.
            self._logger.debug(message, source=source, level=level)
        else:
            getattr(self._logger, "warning" if level == "warn" else level)(message, source=source)

    def render(self) -> str:
        """Apex-style debug log text: one line per entry."""
        return "\n".join(f"{e.at_ms:10.3f}ms|{e.source.upper()}|{e.level.upper()}|{e.message}" for e in self.entries)

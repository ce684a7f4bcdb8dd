"""The debug log of one execution: structured entries first, the Apex-style text a rendering of them.

Every host call leaves an entry (``QUERY``, ``DML``, ``CALLOUT`` with rows and time), the
guest's ``log.write`` lines are ``USER_DEBUG``, and the executor brackets it all with
``EXECUTION_START``, ``LIMIT_USAGE`` and ``EXECUTION_END``, as Salesforce debug logs do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog

LEVELS = ("debug", "info", "warn", "error")
MAX_HOST_MESSAGE_CHARS = 2048  # a host entry quotes guest input (SOQL text, URLs): bounded per entry
MAX_STORED_LOG_BYTES = 4 * 1024 * 1024  # everything an execution's log keeps, guest and host lines
ALWAYS_KEPT = frozenset({"EXECUTION_START", "LIMIT_USAGE", "EXECUTION_END"})  # the brackets of every log


@dataclass(frozen=True)
class LogEntry:
    at_ms: float  # since the execution started
    level: str
    message: str
    source: str  # "guest" for log.write, "host" for everything the host records
    event: str = "USER_DEBUG"
    rows: int | None = None
    duration_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at_ms": self.at_ms,
            "event": self.event,
            "level": self.level,
            "message": self.message,
            "source": self.source,
        }
        if self.rows is not None:
            entry["rows"] = self.rows
        if self.duration_ms is not None:
            entry["duration_ms"] = self.duration_ms
        return entry


@dataclass
class Span:
    """A timed host call being recorded; the capability fills in ``rows`` once it knows them."""

    rows: int | None = None
    outcome: str = ""


@dataclass
class ExecutionLog:
    """Collects an execution's log and mirrors every entry to structlog."""

    execution_id: str
    entries: list[LogEntry] = field(default_factory=list)
    max_bytes: int = MAX_STORED_LOG_BYTES
    dropped: int = 0  # entries not kept once ``max_bytes`` was reached
    _stored: int = 0
    _started: float = field(default_factory=time.monotonic)
    _started_wall: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self._logger = structlog.get_logger("circuit.execution").bind(execution_id=self.execution_id)

    def _now_ms(self) -> float:
        return round((time.monotonic() - self._started) * 1000, 3)

    def _keep(self, entry: LogEntry) -> None:
        """Store ``entry`` within the log's byte budget: host messages are cut to a bounded length,
        and past ``max_bytes`` entries are counted instead of kept (the brackets always are)."""
        if entry.source == "host" and len(entry.message) > MAX_HOST_MESSAGE_CHARS:
            cut = len(entry.message) - MAX_HOST_MESSAGE_CHARS
            entry = replace(entry, message=f"{entry.message[:MAX_HOST_MESSAGE_CHARS]}… ({cut} more characters)")
        size = len(entry.message.encode("utf-8", "replace")) + 64
        if self._stored + size > self.max_bytes and entry.event not in ALWAYS_KEPT:
            if not self.dropped:
                self.entries.append(
                    LogEntry(
                        self._now_ms(), "warn", f"debug log reached {self.max_bytes} bytes", "host", "LOG_TRUNCATED"
                    )
                )
            self.dropped += 1
            return
        if entry.event == "EXECUTION_END" and self.dropped:
            entry = replace(entry, message=f"{entry.message} ({self.dropped} log entries not kept)")
        self._stored += size
        self.entries.append(entry)

    def write(self, level: str, message: str, source: str = "guest") -> None:
        """A log line: the guest's (``USER_DEBUG``) or the host's own (``SYSTEM``)."""
        event = "USER_DEBUG" if source == "guest" else "SYSTEM"
        self._keep(LogEntry(self._now_ms(), level, message, source, event))
        if source == "guest":
            # Guest lines belong to the execution's own log; operators see them at debug level.
            self._logger.debug(message, source=source, level=level)
        else:
            getattr(self._logger, "warning" if level == "warn" else level)(message, source=source)

    def event(self, event: str, message: str, rows: int | None = None, duration_ms: float | None = None) -> None:
        """A host event (``EXECUTION_START``, ``CODE_UNIT_STARTED``, ``LIMIT_USAGE``…)."""
        self._keep(LogEntry(self._now_ms(), "debug", message, "host", event, rows, duration_ms))

    @contextmanager
    def timed(self, event: str, message: str) -> Iterator[Span]:
        """Record one host call with its duration, its rows and, if it failed, why."""
        span = Span()
        started = time.monotonic()
        try:
            yield span
        except Exception as exc:
            span.outcome = f" -> {type(exc).__name__}: {exc}"
            raise
        finally:
            elapsed = round((time.monotonic() - started) * 1000, 3)
            self._keep(LogEntry(self._now_ms(), "debug", message + span.outcome, "host", event, span.rows, elapsed))

    def render(self) -> str:
        """The Apex-style debug log: ``HH:MM:SS.mmm (nanoseconds)|EVENT|details``."""
        lines = []
        for e in self.entries:
            wall = datetime.fromtimestamp(self._started_wall + e.at_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
            parts = [f"{wall} ({int(e.at_ms * 1_000_000)})", e.event]
            if e.event == "USER_DEBUG":
                parts.append(e.level.upper())
            if e.rows is not None:
                parts.append(f"Rows:{e.rows}")
            if e.duration_ms is not None:
                parts.append(f"{e.duration_ms:.3f}ms")
            parts.append(e.message)
            lines.append("|".join(parts))
        return "\n".join(lines)

"""The debug log of one execution: structured entries first, the Apex-style text a rendering of them.

Every host call leaves an entry (``QUERY``, ``DML``, ``CALLOUT`` with rows and time), the
guest's ``log.write`` lines are ``USER_DEBUG``, and the executor brackets it all with
``EXECUTION_START``, ``FATAL_ERROR``, ``LIMIT_USAGE`` and ``EXECUTION_END``, as Salesforce debug
logs do.

Every entry kept is charged to the execution's ``log_bytes``, the host's as the guest's: its
message's UTF-8 bytes plus ``LINE_BYTES`` for the rest of its rendered line (an upper bound, so
the charge is the same whatever the timing, and the stored log is never larger than the usage
reported). A guest line over the limit fails the execution (``LimitExceeded``, as before); a host
line that does not fit is not kept, as Apex truncates a debug log and never fails a transaction
for its size. The brackets are always kept and charged, so a full log may report up to their
size (``LINE_BYTES`` plus at most 2,048 characters each) over the limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from .execution_observer import UNOBSERVED, AttributeValue, ExecutionObserver, ObservedStep
from .governor import Governor

LEVELS = ("debug", "info", "warn", "error")
MAX_HOST_MESSAGE_CHARS = 2048  # a host entry quotes guest input (SOQL text, URLs): bounded per entry
MAX_STORED_LOG_BYTES = 4 * 1024 * 1024  # everything an execution's log keeps, guest and host lines
LINE_BYTES = 128  # charged per entry for its rendered line's time, event, level, rows and duration
LIMIT_USAGE_BYTES = 1024  # the LIMIT_USAGE line's message is charged this, its bound: time makes it vary
# The brackets of every log, and its truncation mark: always kept, each bounded in size.
ALWAYS_KEPT = frozenset({"EXECUTION_START", "FATAL_ERROR", "LIMIT_USAGE", "EXECUTION_END", "LOG_TRUNCATED"})


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
class CodeUnit:
    """A trigger run being recorded; the firing sets ``status`` from the guest's outcome."""

    status: str = ""


@dataclass
class ExecutionLog:
    """Collects an execution's log, charges what it keeps to ``log_bytes``, mirrors it to structlog,
    and opens an observed step (``execution_observer.py``: metrics, traces) around every timed host
    call and trigger run."""

    execution_id: str
    governor: Governor  # the execution's: every kept line is charged to its ``log_bytes``
    entries: list[LogEntry] = field(default_factory=list)
    observer: ExecutionObserver = UNOBSERVED
    max_bytes: int = MAX_STORED_LOG_BYTES  # what is kept even when ``log_bytes`` allows more
    dropped: int = 0  # entries not kept: over ``log_bytes`` (host lines) or over ``max_bytes``
    _stored: int = 0
    _started: float = field(default_factory=time.monotonic)
    _started_wall: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self._bound: Any = None

    @property
    def _logger(self) -> Any:
        """structlog's logger bound to this execution, made when it first mirrors a line: binding costs
        about 10 µs, a tenth of a fresh empty execution, and many executions mirror nothing."""
        if self._bound is None:
            self._bound = structlog.get_logger("circuit.execution").bind(execution_id=self.execution_id)
        return self._bound

    def _now_ms(self) -> float:
        return round((time.monotonic() - self._started) * 1000, 3)

    def _keep(self, entry: LogEntry) -> None:
        """Store ``entry`` and charge its size to ``log_bytes``.

        Host messages are cut to a bounded length. A guest line over ``log_bytes`` raises
        ``LimitExceeded``; any other line that does not fit (``log_bytes`` or ``max_bytes``) is
        counted in ``dropped`` instead, with one ``LOG_TRUNCATED`` mark. Brackets always fit.
        """
        if entry.source == "host" and len(entry.message) > MAX_HOST_MESSAGE_CHARS:
            cut = len(entry.message) - MAX_HOST_MESSAGE_CHARS
            entry = replace(entry, message=f"{entry.message[:MAX_HOST_MESSAGE_CHARS]}… ({cut} more characters)")
        if entry.event == "EXECUTION_END" and self.dropped:
            entry = replace(entry, message=f"{entry.message} ({self.dropped} log entries not kept)")
        if entry.event == "LIMIT_USAGE":
            entry = replace(entry, message=entry.message[:LIMIT_USAGE_BYTES])
            size = LINE_BYTES + LIMIT_USAGE_BYTES
        else:
            size = LINE_BYTES + len(entry.message.encode("utf-8", "replace"))
        if entry.event not in ALWAYS_KEPT:
            if entry.source == "guest" and size > self.governor.remaining("log_bytes"):
                self.governor.charge("log_bytes", size)  # raises: the guest's line is over its limit
            if size > min(self.governor.remaining("log_bytes"), self.max_bytes - self._stored):
                if not self.dropped:
                    limit = min(self.governor.limit("log_bytes"), self.max_bytes)
                    mark = f"debug log reached {limit} bytes"
                    self._keep(LogEntry(self._now_ms(), "warn", mark, "host", "LOG_TRUNCATED"))
                self.dropped += 1
                return
        self.governor.add_measured("log_bytes", size)
        self._stored += size
        self.entries.append(entry)

    def write(self, level: str, message: str, source: str = "guest") -> None:
        """A log line: the guest's (``USER_DEBUG``, charged or refused) or the host's own (``SYSTEM``)."""
        event = "USER_DEBUG" if source == "guest" else "SYSTEM"
        self._keep(LogEntry(self._now_ms(), level, message, source, event))
        if source == "guest":
            # Guest lines belong to the execution's own log; operators see them at debug level.
            self._logger.debug(message, source=source, level=level)
        else:
            getattr(self._logger, "warning" if level == "warn" else level)(message, source=source)

    def fatal(self, message: str) -> None:
        """Why the execution failed (``FATAL_ERROR``): kept even in a full log, like the brackets."""
        self._keep(LogEntry(self._now_ms(), "error", message, "host", "FATAL_ERROR"))
        self._logger.error(message, source="host")

    def event(self, event: str, message: str, rows: int | None = None, duration_ms: float | None = None) -> None:
        """A host event (``EXECUTION_START``, ``CODE_UNIT_STARTED``, ``LIMIT_USAGE``…)."""
        self._keep(LogEntry(self._now_ms(), "debug", message, "host", event, rows, duration_ms))

    @contextmanager
    def timed(self, event: str, message: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
        """Record one host call with its duration, its rows and, if it failed, why; observe it as a
        step of kind ``event.lower()`` with ``attributes`` (bounded, never secret) and its rows."""
        span = Span()
        step = ObservedStep(event.lower(), message, dict(attributes or {}))
        with self.observer.step(step):
            started = time.monotonic()
            try:
                yield span
            except Exception as exc:
                span.outcome = f" -> {type(exc).__name__}: {exc}"
                step.outcome = "error"
                raise
            finally:
                elapsed = round((time.monotonic() - started) * 1000, 3)
                if span.rows is not None:
                    step.attributes["circuit.rows"] = span.rows
                self._keep(LogEntry(self._now_ms(), "debug", message + span.outcome, "host", event, span.rows, elapsed))

    @contextmanager
    def code_unit(self, where: str, detail: str, attributes: Mapping[str, AttributeValue]) -> Iterator[CodeUnit]:
        """Record a trigger run between ``CODE_UNIT_STARTED`` and ``CODE_UNIT_FINISHED`` (once its
        ``status`` is known) and observe it as a ``trigger`` step nested in the host call that fired it."""
        unit = CodeUnit()
        step = ObservedStep("trigger", where, dict(attributes))
        self.event("CODE_UNIT_STARTED", f"{where} ({detail})")
        with self.observer.step(step):
            yield unit
            step.outcome = unit.status or "error"
        if unit.status:
            self.event("CODE_UNIT_FINISHED", f"{where}: {unit.status}")

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

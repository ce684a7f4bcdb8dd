"""``log.write``: append to the execution's debug log, charged against ``log_bytes``."""

from __future__ import annotations

from ..execution.context import ExecutionContext


def write(context: ExecutionContext, level: str, message: str) -> None:
    context.governor.charge("log_bytes", len(message.encode("utf-8")))
    context.log.write(level, message)

"""``log.write``: append to the execution's debug log, which charges the line to ``log_bytes``."""

from __future__ import annotations

from ..execution.context import ExecutionContext


def write(context: ExecutionContext, level: str, message: str) -> None:
    context.log.write(level, message)

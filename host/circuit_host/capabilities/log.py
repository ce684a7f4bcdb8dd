"""``log.write``: append to the execution's debug log, charged against ``log_bytes``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import wasmtime

from ..abi.lowering import define_import
from ..abi.signatures import LOG_LEVELS, LOG_WRITE

if TYPE_CHECKING:
    from ..execution.context import ExecutionContext


def write(context: ExecutionContext, level: int, message: str) -> None:
    context.governor.charge("log_bytes", len(message.encode("utf-8")))
    context.log.write(LOG_LEVELS[level], message)


def link(linker: wasmtime.Linker) -> None:
    define_import(linker, LOG_WRITE, write)

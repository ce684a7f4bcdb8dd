"""The execution's debug log. Lines count against the ``log_bytes`` limit."""

from __future__ import annotations

from . import _bindings

_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}


def write(level: str, message: str) -> None:
    iface = _bindings.interface("log")
    iface.write(iface.Level(_LEVELS[level]) if hasattr(iface, "Level") else _LEVELS[level], str(message))


def debug(message: str) -> None:
    write("debug", message)


def info(message: str) -> None:
    write("info", message)


def warn(message: str) -> None:
    write("warn", message)


def error(message: str) -> None:
    write("error", message)

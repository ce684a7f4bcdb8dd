"""Exceptions as one line for a report: ``Type: message (at file.py:12: the line)``.

Plain Python (no component imports), so the native test run uses it too.
"""

from __future__ import annotations

import traceback

# file name -> source lines, captured at build time (the sandbox has no files to read later)
SOURCES: dict[str, list[str]] = {}


def where(exc: BaseException) -> str:
    """`` (at file.py:12: the line)`` for the innermost frame; no linecache in the sandbox."""
    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames:
        return ""
    frame, lineno = frames[-1]
    name = frame.f_code.co_filename.rsplit("/", 1)[-1]
    lines = SOURCES.get(frame.f_code.co_filename)
    text = lines[lineno - 1].strip() if lines is not None and 0 < lineno <= len(lines) else ""
    return f" (at {name}:{lineno}: {text})" if text else f" (at {name}:{lineno})"


def describe(exc: BaseException) -> str:
    message = str(exc)
    head = type(exc).__name__ + (f": {message}" if message else "")
    return head + where(exc)

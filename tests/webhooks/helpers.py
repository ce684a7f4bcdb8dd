"""Fixture payloads (real-shaped webhook bodies, as bytes) and clocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"


def body(name: str) -> bytes:
    """A fixture's exact bytes: signatures are computed over these."""
    return (PAYLOADS / f"{name}.json").read_bytes()


def data(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(body(name))
    return loaded


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)

"""Fixture payloads (real-shaped webhook bodies, as bytes), clocks, and a source's intake as the server runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from circuit_host.connectors.crm.crm_registry import plugin_for
from circuit_host.webhooks import DEFAULT_LIMITS, BodyLimits, Change, read_json_body

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


def normalize(
    source: str,
    raw: bytes,
    content_type: str | None,
    *,
    limits: BodyLimits = DEFAULT_LIMITS,
    configuration: BaseModel | None = None,
) -> list[Change]:
    """What the hooks route does once a webhook is verified: the source's plugin on the strict JSON body."""
    plugin = plugin_for(source)
    data = read_json_body(raw, content_type, limits)
    return plugin.normalize(data, configuration or plugin.configuration(), limits)

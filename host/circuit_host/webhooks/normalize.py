"""``normalize``: a webhook body from any source as ``Change``s."""

from __future__ import annotations

from .errors import WebhookRejected
from .generic import normalize_generic
from .ghl import GhlMapping, normalize_ghl
from .model import DEFAULT_LIMITS, SOURCES, BodyLimits, Change, check_content_type, parse_json
from .salesforce_cdc import normalize_salesforce_cdc


def normalize(
    source: str,
    body: bytes,
    content_type: str | None,
    *,
    ghl_mapping: GhlMapping | None = None,
    limits: BodyLimits = DEFAULT_LIMITS,
) -> list[Change]:
    """Decode and validate ``body`` for ``source`` (``ghl``, ``salesforce-cdc`` or ``generic``).

    Raises ``WebhookRejected``: 404 unknown source, 413 too large, 415 not JSON, 400 malformed,
    422 a well-formed event of a kind the host does not handle (named in the message).
    """
    if source not in SOURCES:
        raise WebhookRejected(
            404, "unknown_source", f"unknown webhook source {source[:40]!r} (known: {', '.join(SOURCES)})"
        )
    check_content_type(content_type)
    data = parse_json(body, limits)
    if source == "ghl":
        return normalize_ghl(data, ghl_mapping)
    if source == "salesforce-cdc":
        return normalize_salesforce_cdc(data, limits)
    return normalize_generic(data, limits)

"""What every source is normalised to: ``Change``, plus the body limits and the strict JSON reader."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from .errors import WebhookRejected, malformed

Action = Literal["insert", "update", "delete", "undelete"]
ACTIONS: tuple[Action, ...] = get_args(Action)

OBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
"""The same object-name rule as ``events.TriggerEvent.object``."""


@dataclass(frozen=True)
class Change:
    """One record change from a CRM, with Salesforce-style field names.

    ``records`` hold what the source sent: for ``insert``/``update``/``undelete`` the record's
    fields (only those the source carried: a missing field is unknown, not null); for ``delete``
    at least the key (``Id`` or ``GHL_Id__c``). ``changed_fields`` is None when the source does
    not say which fields changed. ``meta`` carries source details the server may need that are
    not record fields (see the package README).
    """

    webhook_id: str | None
    occurred_at: datetime | None
    object: str
    action: Action
    records: list[dict[str, Any]]
    changed_fields: list[str] | None = None
    source: str = "generic"
    """The registered source that sent it (``CrmPlugin.source``)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def operation(self, timing: Literal["before", "after"]) -> str:
        """The trigger operation this change fires at ``timing``: ``after_insert``, ``before_update``..."""
        return f"{timing}_{self.action}"


@dataclass(frozen=True)
class BodyLimits:
    """Caps applied before and while decoding a body."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_records: int = 200  # records per generic webhook
    max_cdc_record_ids: int = 2000  # recordIds per Salesforce change event


DEFAULT_LIMITS = BodyLimits()

_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")


def check_content_type(content_type: str | None) -> None:
    """JSON only (``application/json``, ``application/*+json``), in UTF-8; an absent header is taken as JSON."""
    if content_type is None or not content_type.strip():
        return
    media, *params = (part.strip() for part in content_type.split(";"))
    if not _JSON_TYPE.match(media.lower()):
        raise WebhookRejected(415, "unsupported_media_type", f"content type {media!r} is not JSON (application/json)")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise WebhookRejected(415, "unsupported_media_type", f"charset {value.strip()!r} is not UTF-8")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json(body: bytes, limits: BodyLimits = DEFAULT_LIMITS) -> Any:
    """Decode a UTF-8 JSON body strictly: size cap, depth cap, no NaN/Infinity, no duplicate keys.

    Every failure is a ``WebhookRejected`` (413 for size, else 400) that says where it went wrong.
    """
    if len(body) > limits.max_bytes:
        raise WebhookRejected(413, "too_large", f"body is {len(body)} bytes, over the {limits.max_bytes}-byte limit")
    if not body.strip():
        raise malformed("body is empty: expected a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"body is not UTF-8: invalid byte at offset {exc.start}") from None
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise malformed(f"invalid JSON at line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}") from None
    except ValueError as exc:  # from the hooks
        raise malformed(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise malformed(f"JSON nested deeper than {limits.max_depth} levels") from None
    depth = _depth(data)
    if depth > limits.max_depth:
        raise malformed(f"JSON nested {depth} levels deep, over the limit of {limits.max_depth}")
    return data


def read_json_body(body: bytes, content_type: str | None, limits: BodyLimits = DEFAULT_LIMITS) -> Any:
    """What every source's normaliser starts from: a JSON content type, then ``parse_json``."""
    check_content_type(content_type)
    return parse_json(body, limits)


def _depth(data: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value)
    return deepest


def parse_timestamp(value: Any, where: str, *, naive_is_utc: bool) -> datetime:
    """An ISO-8601 string or epoch number (seconds, or milliseconds when over 10^11) as an aware UTC datetime."""
    if isinstance(value, bool):
        raise malformed(f"{where}: expected a timestamp, got a boolean")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise malformed(f"{where}: timestamp {value} is out of range") from None
    if not isinstance(value, str):
        raise malformed(f"{where}: expected an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise malformed(f"{where}: {value[:40]!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise malformed(f"{where}: {value[:40]!r} has no UTC offset (add Z or +00:00)")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def expect_object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise malformed(f"{where}: expected a JSON object, got {_kind(data)}")
    return data


def expect_string(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        if value is None:
            what = "is missing"
        elif value == "":
            what = "must not be empty"
        else:
            what = f"must be a string, got {_kind(value)}"
        raise malformed(f"{where}: field {key!r} {what}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")

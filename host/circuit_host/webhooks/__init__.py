"""Webhook intake: normalise CRM webhooks to ``Change``s, verify their authenticity, refuse replays, coalesce bursts.

Pure Python, no web framework: the server calls, per request,
``verify(source, body, headers, keys, now)``, then ``normalize(source, body, content_type)``,
then ``check_replay(guard, scope, change.webhook_id, now)``, and hands the changes to a
``Coalescer`` (or runs them directly). See README.md in this folder.
"""

from .coalesce import CoalesceKey, Coalescer, FlushFn
from .errors import WebhookRejected
from .generic import GenericWebhook, generic_json_schema
from .ghl import EVENT_TYPES as GHL_EVENT_TYPES
from .ghl import GHL_ID_FIELD, GhlMapping
from .model import ACTIONS, DEFAULT_LIMITS, SOURCES, Action, BodyLimits, Change, Source, parse_json
from .normalize import normalize
from .replay import InMemoryReplayGuard, ReplayGuard, check_replay
from .signatures import (
    CIRCUIT_SIGNATURE,
    DEFAULT_TOLERANCE,
    GHL_LEGACY_SIGNATURE,
    GHL_SIGNATURE,
    WebhookKeys,
    parse_ed25519_public_key,
    parse_rsa_public_key,
    sign_hmac,
    verify,
)

__all__ = [
    "ACTIONS",
    "CIRCUIT_SIGNATURE",
    "DEFAULT_LIMITS",
    "DEFAULT_TOLERANCE",
    "GHL_EVENT_TYPES",
    "GHL_ID_FIELD",
    "GHL_LEGACY_SIGNATURE",
    "GHL_SIGNATURE",
    "SOURCES",
    "Action",
    "BodyLimits",
    "Change",
    "CoalesceKey",
    "Coalescer",
    "FlushFn",
    "GenericWebhook",
    "GhlMapping",
    "InMemoryReplayGuard",
    "ReplayGuard",
    "Source",
    "WebhookKeys",
    "WebhookRejected",
    "check_replay",
    "generic_json_schema",
    "normalize",
    "parse_ed25519_public_key",
    "parse_json",
    "parse_rsa_public_key",
    "sign_hmac",
    "verify",
]

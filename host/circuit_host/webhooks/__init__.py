"""Source-neutral webhook intake: ``Change``, strict JSON, signing helpers, replay.

What each source sends and how its authenticity is checked lives in its plugin
(``connectors/crm/<source>/``), found through ``connectors.crm.crm_registry``. The server calls,
per request, ``plugin.verify``, ``read_json_body`` then ``plugin.normalize``, and stores the
changes in its durable inbox (``server/webhook_inbox.py``). See README.md in this folder.
"""

from .errors import WebhookRejected
from .model import ACTIONS, DEFAULT_LIMITS, Action, BodyLimits, Change, parse_json, read_json_body
from .replay import InMemoryReplayGuard, ReplayGuard, check_replay
from .signing import (
    CIRCUIT_SIGNATURE,
    DEFAULT_TOLERANCE,
    CircuitSecretSettings,
    HmacKeys,
    sign_hmac,
    verify_hmac,
)

__all__ = [
    "ACTIONS",
    "CIRCUIT_SIGNATURE",
    "DEFAULT_LIMITS",
    "DEFAULT_TOLERANCE",
    "Action",
    "BodyLimits",
    "Change",
    "CircuitSecretSettings",
    "HmacKeys",
    "InMemoryReplayGuard",
    "ReplayGuard",
    "WebhookRejected",
    "check_replay",
    "parse_json",
    "read_json_body",
    "sign_hmac",
    "verify_hmac",
]

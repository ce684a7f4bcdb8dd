"""Source-neutral webhook intake: ``Change``, strict JSON, signing helpers, replay, coalescing.

What each source sends and how its authenticity is checked lives in its plugin
(``connectors/crm/<source>/``), found through ``connectors.crm.crm_registry``. The server calls,
per request, ``plugin.verify``, ``read_json_body`` then ``plugin.normalize``, then
``check_replay``, and hands the changes to a ``Coalescer`` (or runs them directly).
See README.md in this folder.
"""

from .coalesce import CoalesceKey, Coalescer, FlushFn
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
    "CoalesceKey",
    "Coalescer",
    "FlushFn",
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

"""The generic source (Circuit Script's own webhook JSON, HMAC-signed), as the registry sees it.

Any system can send it; there is no connector behind it, and its records carry the
store's own ids (no external-id field).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ....webhooks.model import BodyLimits, Change
from ....webhooks.signing import CircuitSecretSettings, verify_hmac
from ..registry import CrmPlugin
from .webhook import SOURCE, normalize_generic


def _verify(body: bytes, headers: Mapping[str, str], settings: CircuitSecretSettings, now: datetime) -> None:
    verify_hmac(body, headers, settings.hmac_keys(), now, SOURCE)


def _normalize(data: Any, settings: CircuitSecretSettings, limits: BodyLimits) -> list[Change]:
    return normalize_generic(data, limits)


GENERIC = CrmPlugin(
    source=SOURCE,
    title="Circuit Script generic JSON",
    configuration=CircuitSecretSettings,
    verify=_verify,
    normalize=_normalize,
)

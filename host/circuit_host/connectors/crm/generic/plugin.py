"""The generic source (Circuit Script's own webhook JSON, HMAC-signed), as the registry sees it.

Any system can send it; there is no connector behind it, and its records carry the
store's own ids (no external-id field).
"""

from __future__ import annotations

from typing import Any

from ....webhooks.model import BodyLimits, Change
from ....webhooks.signing import CircuitSecretSettings, circuit_signature_check
from ..crm_registry import CrmPlugin
from .webhook import SOURCE, normalize_generic


def _normalize(data: Any, settings: CircuitSecretSettings, limits: BodyLimits) -> list[Change]:
    return normalize_generic(data, limits)


GENERIC = CrmPlugin(
    source=SOURCE,
    title="Circuit Script generic JSON",
    configuration=CircuitSecretSettings,
    verify=circuit_signature_check(SOURCE),
    normalize=_normalize,
)

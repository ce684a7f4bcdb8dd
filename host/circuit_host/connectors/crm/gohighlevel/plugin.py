"""GoHighLevel as a webhook source and a system of record, as the registry sees it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ....webhooks.model import BodyLimits, Change
from ..crm_registry import CrmPlugin, ExternalId
from .authenticity import verify_ghl
from .configuration import GoHighLevelSettings, GoHighLevelWebhookSettings
from .connector import GoHighLevelConnector
from .webhook import GHL_ID_FIELD, SOURCE, normalize_ghl


def _verify(body: bytes, headers: Mapping[str, str], settings: GoHighLevelWebhookSettings, now: datetime) -> None:
    verify_ghl(body, headers, settings.keys(), now)


def _normalize(data: Any, settings: GoHighLevelWebhookSettings, limits: BodyLimits) -> list[Change]:
    return normalize_ghl(data, settings.mapping())


GOHIGHLEVEL = CrmPlugin(
    source=SOURCE,
    title="GoHighLevel",
    configuration=GoHighLevelWebhookSettings,
    verify=_verify,
    normalize=_normalize,
    external_id=ExternalId(GHL_ID_FIELD, carried_as=GHL_ID_FIELD),
    connector=GoHighLevelConnector,
    connector_settings=GoHighLevelSettings,
)

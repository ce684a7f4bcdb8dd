"""Salesforce as a webhook source (Change Data Capture, relayed) and a system of record, as the registry sees it.

Salesforce does not sign CDC events; the relay that forwards them signs with Circuit Script's
own ``X-Circuit-Signature`` scheme, with the tenant's ``generic_hmac_secret``.
"""

from __future__ import annotations

from typing import Any

from ....webhooks.model import BodyLimits, Change
from ....webhooks.signing import CircuitSecretSettings, circuit_signature_check
from ..crm_registry import CrmPlugin, ExternalId
from .configuration import SalesforceSettings
from .connector import SalesforceConnector
from .webhook import SALESFORCE_ID_FIELD, SOURCE, normalize_salesforce_cdc


def _normalize(data: Any, settings: CircuitSecretSettings, limits: BodyLimits) -> list[Change]:
    return normalize_salesforce_cdc(data, limits)


SALESFORCE_CDC = CrmPlugin(
    source=SOURCE,
    title="Salesforce Change Data Capture",
    configuration=CircuitSecretSettings,
    verify=circuit_signature_check(SOURCE),
    normalize=_normalize,
    external_id=ExternalId(SALESFORCE_ID_FIELD, carried_as="Id"),
    connector=SalesforceConnector,
    connector_settings=SalesforceSettings,
)

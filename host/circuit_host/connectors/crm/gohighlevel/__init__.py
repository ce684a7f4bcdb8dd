"""GoHighLevel: the connector (Contact and Task over REST v2), its webhooks, their signatures, its settings.

``GOHIGHLEVEL`` is the plugin the registry knows it by (source ``ghl``).
"""

from .authenticity import (
    GHL_LEGACY_SIGNATURE,
    GHL_SIGNATURE,
    GhlKeys,
    parse_ed25519_public_key,
    parse_rsa_public_key,
    verify_ghl,
)
from .configuration import GoHighLevelSettings, GoHighLevelWebhookSettings
from .connector import GoHighLevelConnector, GoHighLevelTransaction
from .fields import CONTACT_FIELDS, TASK_FIELDS, custom_field_circuit_name, record_from_ghl
from .plugin import GOHIGHLEVEL
from .webhook import EVENT_TYPES, GHL_ID_FIELD, GhlMapping, normalize_ghl

__all__ = [
    "CONTACT_FIELDS",
    "EVENT_TYPES",
    "GHL_ID_FIELD",
    "GHL_LEGACY_SIGNATURE",
    "GHL_SIGNATURE",
    "GOHIGHLEVEL",
    "TASK_FIELDS",
    "GhlKeys",
    "GhlMapping",
    "GoHighLevelConnector",
    "GoHighLevelSettings",
    "GoHighLevelTransaction",
    "GoHighLevelWebhookSettings",
    "custom_field_circuit_name",
    "normalize_ghl",
    "parse_ed25519_public_key",
    "parse_rsa_public_key",
    "record_from_ghl",
    "verify_ghl",
]

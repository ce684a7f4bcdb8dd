"""The generic webhook source: Circuit Script's own JSON, signed with ``X-Circuit-Signature``.

``GENERIC`` is the plugin the registry knows it by (source ``generic``).
"""

from .plugin import GENERIC
from .webhook import GenericWebhook, generic_json_schema, normalize_generic

__all__ = ["GENERIC", "GenericWebhook", "generic_json_schema", "normalize_generic"]

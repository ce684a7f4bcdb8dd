"""Salesforce: the connector (SOQL passthrough, sObject Collections), its Change Data Capture events, its settings.

``SALESFORCE_CDC`` is the plugin the registry knows it by (source ``salesforce-cdc``).
"""

from .configuration import SalesforceSettings
from .connector import SalesforceConnector, SalesforceTransaction, bind_soql, soql_literal
from .plugin import SALESFORCE_CDC
from .webhook import CHANGE_TYPES, SALESFORCE_ID_FIELD, normalize_salesforce_cdc

__all__ = [
    "CHANGE_TYPES",
    "SALESFORCE_CDC",
    "SALESFORCE_ID_FIELD",
    "SalesforceConnector",
    "SalesforceSettings",
    "SalesforceTransaction",
    "bind_soql",
    "normalize_salesforce_cdc",
    "soql_literal",
]

"""CRMs as systems of record and as webhook sources, one package per CRM, found through ``crm_registry``.

Reads go to the CRM, writes go through a transactional outbox. See README.md in this folder
for configuration, what each CRM supports, the outbox's delivery guarantees, and how to add a CRM.
"""

from .api import CrmAuthError, CrmError, CrmRequestError, CrmUnavailable
from .crm_registry import CrmPlugin, ExternalId, register
from .generic import GENERIC
from .gohighlevel import (
    CONTACT_FIELDS,
    GOHIGHLEVEL,
    TASK_FIELDS,
    GoHighLevelConnector,
    GoHighLevelSettings,
    GoHighLevelTransaction,
)
from .outbox import (
    Delivery,
    DeliveryFailed,
    DispatchReport,
    Outbox,
    OutboxDispatcher,
    OutboxEntry,
    OutboxSender,
    OutboxWriter,
)
from .provisional import PROVISIONAL_ID, is_provisional, new_provisional_id
from .retry_policy import RetryPolicy
from .salesforce import (
    SALESFORCE_CDC,
    SalesforceConnector,
    SalesforceSettings,
    SalesforceTransaction,
    bind_soql,
    soql_literal,
)

# The sources this host ships, in the order their webhook URLs are listed. Adding a CRM: one line here.
for _plugin in (GOHIGHLEVEL, SALESFORCE_CDC, GENERIC):
    register(_plugin)

__all__ = [
    "CONTACT_FIELDS",
    "GENERIC",
    "GOHIGHLEVEL",
    "PROVISIONAL_ID",
    "SALESFORCE_CDC",
    "TASK_FIELDS",
    "CrmAuthError",
    "CrmError",
    "CrmPlugin",
    "CrmRequestError",
    "CrmUnavailable",
    "Delivery",
    "DeliveryFailed",
    "DispatchReport",
    "ExternalId",
    "GoHighLevelConnector",
    "GoHighLevelSettings",
    "GoHighLevelTransaction",
    "Outbox",
    "OutboxDispatcher",
    "OutboxEntry",
    "OutboxSender",
    "OutboxWriter",
    "RetryPolicy",
    "SalesforceConnector",
    "SalesforceSettings",
    "SalesforceTransaction",
    "bind_soql",
    "is_provisional",
    "new_provisional_id",
    "soql_literal",
]

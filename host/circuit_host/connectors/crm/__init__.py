"""CRMs as systems of record: reads go to the CRM, writes go through a transactional outbox.

See README.md in this folder for configuration, what each CRM supports, and the outbox's
delivery guarantees.
"""

from .api import CrmAuthError, CrmError, CrmRequestError, CrmUnavailable
from .gohighlevel import CONTACT_FIELDS, TASK_FIELDS, GoHighLevelConnector, GoHighLevelTransaction
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
from .salesforce import SalesforceConnector, SalesforceTransaction, bind_soql, soql_literal
from .settings import GoHighLevelSettings, RetryPolicy, SalesforceSettings

__all__ = [
    "CONTACT_FIELDS",
    "PROVISIONAL_ID",
    "TASK_FIELDS",
    "CrmAuthError",
    "CrmError",
    "CrmRequestError",
    "CrmUnavailable",
    "Delivery",
    "DeliveryFailed",
    "DispatchReport",
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

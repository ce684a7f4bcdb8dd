"""Signed webhook bodies for the load generator (``--factory benchmarks.webhook_bodies:FUNCTION``).

Each request gets a body of its own (a unique delivery id and contact), signed as the CRM signs it,
so the server's de-duplication never answers "duplicate" and every request does the full intake.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

RUN = os.urandom(4).hex()  # one per load-generator process: ids never repeat across runs
LOCATION = "loc-bench-001"
CUSTOM_FIELDS = {
    "cf-size": "Company_Size__c",
    "cf-visits": "Website_Visits__c",
    "cf-opens": "Emails_Opened__c",
    "cf-called": "Called_Business__c",
}
_keys: dict[str, Ed25519PrivateKey] = {}


def generic_contact(n: int, secret: str) -> tuple[bytes, dict[str, str]]:
    """A generic insert of one Contact, ``X-Circuit-Signature`` with ``secret``."""
    body = json.dumps(
        {
            "id": f"bench-{RUN}-{n}",
            "object": "Contact",
            "operation": "insert",
            "records": [{"LastName": f"Lead{n}", "Email": f"lead{n}@acme.io", "Company_Size__c": 250}],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    ).encode()
    t = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "x-circuit-signature": f"t={t},v1={mac}"}


def ghl_contact_create(n: int, private_key_b64: str) -> tuple[bytes, dict[str, str]]:
    """A GoHighLevel ``ContactCreate``, ``X-GHL-Signature`` (Ed25519) with the given raw private key."""
    key = _keys.get(private_key_b64)
    if key is None:
        key = _keys[private_key_b64] = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64))
    body = json.dumps(
        {
            "type": "ContactCreate",
            "locationId": LOCATION,
            "id": f"ghl-{RUN}-{n}",
            "webhookId": f"wh-{RUN}-{n}",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "firstName": "Priya",
            "lastName": f"Raman{n}",
            "email": f"priya{n}@acme.io",
            "companyName": "Acme",
            "customFields": [  # mapped by the tenant's ghl_custom_fields (CUSTOM_FIELDS)
                {"id": "cf-size", "value": 50 + n % 500},
                {"id": "cf-visits", "value": n % 20},
                {"id": "cf-opens", "value": n % 9},
                {"id": "cf-called", "value": n % 3 == 0},
            ],
        }
    ).encode()
    signature = base64.b64encode(key.sign(body)).decode()
    return body, {"content-type": "application/json", "x-ghl-signature": signature}

"""Provisional record ids: what a guest gets for a record queued for insert but not yet sent.

Format (18 characters, ``[0-9A-Za-z]`` only, so it passes wherever an Id does)::

    003 PRV 1a2B3c4D5e6F
    │   │   └─ 12 random base62 characters
    │   └───── the marker "PRV"
    └───────── the object's 3-character Id prefix (Salesforce's for standard objects)

A real Salesforce Id always has ``0`` as its sixth character (the reserved digit), and
GoHighLevel ids are 20 characters long, so a provisional id never equals a real one. The
outbox records every id it hands out; when the insert is sent it maps the provisional id to
the CRM's id and rewrites every later queued operation that mentions it.
"""

from __future__ import annotations

import re
import secrets
import string

from ...circuitdb.schema import record_id_prefix

MARKER = "PRV"
PROVISIONAL_ID = re.compile(r"[0-9A-Za-z]{3}PRV[0-9A-Za-z]{12}")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def new_provisional_id(object_name: str) -> str:
    return record_id_prefix(object_name) + MARKER + "".join(secrets.choice(_BASE62) for _ in range(12))


def is_provisional(value: object) -> bool:
    return isinstance(value, str) and PROVISIONAL_ID.fullmatch(value) is not None

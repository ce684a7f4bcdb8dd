"""CircuitDB: typed records per tenant on SQLite or PostgreSQL, queried with a SOQL subset.

See README.md in this folder for the schema model, table layout and SOQL translation.
"""

from .manifest import parse_schema, read_schema
from .schema import (
    STANDARD_OBJECTS,
    FieldDef,
    FieldType,
    ObjectDef,
    Schema,
    SchemaLimits,
    new_record_id,
    record_id_prefix,
)
from .store import CircuitDB, CircuitTransaction, OutboxJob, SchemaChanges, open_store

__all__ = [
    "STANDARD_OBJECTS",
    "CircuitDB",
    "CircuitTransaction",
    "FieldDef",
    "FieldType",
    "ObjectDef",
    "OutboxJob",
    "Schema",
    "SchemaChanges",
    "SchemaLimits",
    "new_record_id",
    "open_store",
    "parse_schema",
    "read_schema",
    "record_id_prefix",
]

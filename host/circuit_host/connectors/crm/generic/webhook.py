"""Circuit Script's own webhook JSON (``generic``), validated with pydantic."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from ....webhooks.errors import malformed
from ....webhooks.model import DEFAULT_LIMITS, Action, BodyLimits, Change, expect_object, parse_timestamp

SOURCE = "generic"
"""The webhook source name: ``/v1/hooks/generic``, and ``Change.source``."""

FieldName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")]
Value = StrictStr | StrictInt | StrictFloat | StrictBool | None


class GenericWebhook(BaseModel):
    """``{"id", "object", "operation", "records", "occurred_at", "changed_fields"?}``; see the README."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StrictStr = Field(min_length=1, max_length=200)
    object: StrictStr = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
    operation: Action
    records: list[dict[FieldName, Value]] = Field(min_length=1)
    occurred_at: StrictStr
    changed_fields: list[FieldName] | None = None


def normalize_generic(data: Any, limits: BodyLimits = DEFAULT_LIMITS) -> list[Change]:
    raw = expect_object(data, "generic webhook")
    try:
        hook = GenericWebhook.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise malformed(f"generic webhook: {details}") from None
    if len(hook.records) > limits.max_records:
        raise malformed(f"generic webhook: {len(hook.records)} records, over the limit of {limits.max_records}")
    for index, record in enumerate(hook.records):
        if not record:
            raise malformed(f"generic webhook: records.{index}: a record needs at least one field")
    occurred_at = parse_timestamp(hook.occurred_at, "generic webhook: occurred_at", naive_is_utc=False)
    return [
        Change(
            webhook_id=hook.id,
            occurred_at=occurred_at.astimezone(UTC),
            object=hook.object,
            action=hook.operation,
            records=[dict(r) for r in hook.records],
            changed_fields=list(hook.changed_fields) if hook.changed_fields is not None else None,
            source=SOURCE,
        )
    ]


def generic_json_schema() -> dict[str, Any]:
    """The JSON Schema of the generic webhook body (for the OpenAPI document)."""
    return GenericWebhook.model_json_schema()

"""The v1 event schema handed to ``handle`` (see ``abi/README.md``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import Rejected

Operation = Literal[
    "before_insert",
    "before_update",
    "before_delete",
    "after_insert",
    "after_update",
    "after_delete",
    "after_undelete",
]
Record = dict[str, Any]


class TriggerEvent(BaseModel):
    """A record change, as Apex hands it to a trigger."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["trigger"] = "trigger"
    object: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
    operation: Operation
    new: list[Record] = Field(default_factory=list)
    old: list[Record] | None = None

    @property
    def timing(self) -> str:
        return self.operation.split("_", 1)[0]

    @property
    def action(self) -> str:
        return self.operation.split("_", 1)[1]

    @model_validator(mode="after")
    def _shape_matches_operation(self) -> TriggerEvent:
        if self.action in ("insert", "undelete") and self.old is not None:
            raise ValueError(f"{self.operation} events carry no old records")
        if self.action == "update" and (self.old is None or len(self.old) != len(self.new)):
            raise ValueError("update events need old records, one per new record")
        if self.action == "delete" and (self.new or not self.old):
            raise ValueError("delete events carry the deleted records in old and none in new")
        return self

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="python")


def parse_event(data: Any) -> TriggerEvent:
    """Validate a decoded event; a bad one is rejected with the field that is wrong."""
    try:
        return TriggerEvent.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}" for err in exc.errors())
        raise Rejected(f"invalid event: {details}") from None


def before_trigger_changes(new: list[Record], output: Any) -> list[Record]:
    """The records a before trigger returned, checked against the ``new`` it was given."""
    if output is None:
        return new
    if not isinstance(output, dict) or not isinstance(output.get("new"), list):
        raise Rejected('a before trigger must return nil or {"new": [records]}')
    changed = output["new"]
    if len(changed) != len(new):
        raise Rejected(f"a before trigger returned {len(changed)} records for {len(new)}")
    for index, (before, after) in enumerate(zip(new, changed, strict=True)):
        if not isinstance(after, dict):
            raise Rejected(f"before trigger record {index} is not a map")
        if "Id" in after and after["Id"] != before.get("Id"):
            raise Rejected(f"before trigger record {index} changed its Id")
    # A field present in the output sets the value; a field absent keeps the event's value.
    return [{**before, **after} for before, after in zip(new, changed, strict=True)]

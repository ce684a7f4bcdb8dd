"""Which store holds a tenant environment's records: CircuitDB (the default) or a registered CRM.

An operator selects it per environment in the tenant setting ``system_of_record``::

    {"production": {"crm": "gohighlevel", "location_id": "...", "api_key": "pit-...", "base_url": "..."}}

Each CRM's entry is validated by its plugin's ``connector_settings`` (``crm`` is that model's
literal), so a CRM token is a ``SecretStr``: sealed at rest and write-only through the API like
every other secret. ``check_connection`` makes one authenticated request before it is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ...errors import Rejected
from . import crm_registry
from .api import CrmError
from .crm_registry import CrmConnector, CrmPlugin
from .outbox import Outbox

CIRCUITDB = "circuitdb"


class CircuitDbRecords(BaseModel):
    """The default: the environment's records live in the host's own CircuitDB store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: Literal["circuitdb"] = "circuitdb"


def crm_names() -> tuple[str, ...]:
    """What ``crm`` may be: ``circuitdb`` and every registered CRM with a connector."""
    return (CIRCUITDB, *(p.crm for p in crm_registry.plugins() if p.crm is not None))


def validate_selection(value: Any) -> BaseModel:
    """One environment's entry of ``system_of_record``, validated by the selected CRM's model."""
    if isinstance(value, CircuitDbRecords) or (isinstance(value, BaseModel) and selected_plugin(value) is not None):
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("crm"), str):
        raise ValueError(f'expected {{"crm": one of {", ".join(crm_names())}, and its connection settings}}')
    name = value["crm"]
    model: type[BaseModel] = CircuitDbRecords
    if name != CIRCUITDB:
        plugin = crm_registry.crm_plugin(name)
        if plugin is None or plugin.connector_settings is None:
            raise ValueError(f"crm {name[:40]!r} is not one of {', '.join(crm_names())}")
        model = plugin.connector_settings
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            where = ".".join(str(p) for p in err["loc"])
            message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {message}" if where else message)
        raise ValueError(f"{name}: " + "; ".join(problems)) from None


def selected_plugin(selection: BaseModel) -> CrmPlugin[Any] | None:
    """The CRM plugin an entry selects; None for CircuitDB."""
    name = getattr(selection, "crm", None)
    if not isinstance(name, str) or name == CIRCUITDB:
        return None
    plugin = crm_registry.crm_plugin(name)
    return plugin if plugin is not None and isinstance(selection, plugin.connector_settings or ()) else None


def crm_of(selection: BaseModel) -> str:
    """The name of the store an entry selects (``circuitdb`` or a CRM's)."""
    plugin = selected_plugin(selection)
    return plugin.crm if plugin is not None and plugin.crm is not None else CIRCUITDB


def open_connector(selection: BaseModel, outbox: Outbox, tenant: str) -> CrmConnector | None:
    """A connector for the selected CRM (None for CircuitDB); the caller closes it."""
    plugin = selected_plugin(selection)
    if plugin is None or plugin.connector is None:
        return None
    return plugin.connector(selection, outbox, tenant)


def check_connection(env: str, selection: BaseModel, outbox: Outbox) -> None:
    """``Rejected`` with the CRM's own answer unless one authenticated request to it succeeds."""
    connector = open_connector(selection, outbox, f"check:{env}")
    if connector is None:
        return
    try:
        connector.check_connection()
    except CrmError as exc:
        raise Rejected(f"system_of_record.{env}: the CRM refused the test request: {exc}") from None
    finally:
        connector.close()

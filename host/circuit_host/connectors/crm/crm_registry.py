"""The webhook sources this host accepts, each described once as a ``CrmPlugin`` and looked up by name.

The server never names a source: the hooks route, signature checks, normalisation, tenant
settings and change application all go through ``plugin_for(source)`` or ``plugins()``.
The CRMs the host ships are registered in this package's ``__init__``; a test may add one
for a while with ``registered(plugin)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from ...webhooks.errors import WebhookRejected
from ...webhooks.model import BodyLimits, Change
from ..records import RecordsConnector
from .outbox import Delivery, Outbox

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class ExternalId:
    """How records from a CRM are keyed in a tenant's store, which has its own ids.

    ``field`` is an external-id text field (``GHL_Id__c``) the server adds to an object on
    first use; ``carried_as`` is where a normalised record holds the CRM's id (the same
    field, or ``Id`` when the source sends the CRM's ids as ``Id``).
    """

    field: str
    carried_as: str


class CrmConnector(RecordsConnector, Protocol):
    """A CRM as a system of record: the records seam for executions and the outbox sender."""

    def deliver(self, delivery: Delivery) -> None: ...

    def check_connection(self) -> None:
        """One cheap authenticated request; the CRM's ``CrmError`` if it fails."""
        ...


class ConnectorFactory(Protocol):
    def __call__(self, settings: Any, outbox: Outbox, tenant: str) -> CrmConnector: ...


@dataclass(frozen=True)
class CrmPlugin(Generic[C]):
    """Everything the host knows about one webhook source (and the CRM behind it, if any).

    - ``source``: the name in the webhook URL (``/v1/hooks/{source}``) and in ``Change.source``.
    - ``configuration``: the tenant settings it reads; its fields are flat keys of
      ``TenantSettings`` (two plugins may share one model, e.g. a signing secret).
    - ``verify(body, headers, configuration, now)``: raise ``WebhookRejected`` unless the
      webhook is authentic and fresh; runs before the body is parsed.
    - ``normalize(data, configuration, limits)``: the parsed JSON body as ``Change``s.
    - ``external_id``: how its records are keyed; None when they carry the store's own ids.
    - ``connector`` / ``connector_settings``: the CRM as a system of record, when there is one;
      ``connector_settings`` has a ``crm`` literal, the name an operator selects it by.
    """

    source: str
    title: str
    configuration: type[C]
    verify: Callable[[bytes, Mapping[str, str], C, datetime], None]
    normalize: Callable[[Any, C, BodyLimits], list[Change]]
    external_id: ExternalId | None = None
    connector: ConnectorFactory | None = None
    connector_settings: type[BaseModel] | None = None

    @property
    def crm(self) -> str | None:
        """Its name as a system of record (``system_of_record`` setting), None if it is only a source."""
        field = self.connector_settings.model_fields.get("crm") if self.connector_settings else None
        return field.default if field is not None and isinstance(field.default, str) else None


_PLUGINS: dict[str, CrmPlugin[Any]] = {}


def register(plugin: CrmPlugin[Any]) -> None:
    """Add a source. Its name must be new, and its settings must not reuse another model's key."""
    if plugin.source in _PLUGINS:
        raise ValueError(f"webhook source {plugin.source!r} is already registered")
    for other in _PLUGINS.values():
        if other.configuration is plugin.configuration:
            continue
        clash = set(other.configuration.model_fields) & set(plugin.configuration.model_fields)
        if clash:
            raise ValueError(f"{plugin.source}: settings {sorted(clash)} are already {other.source}'s")
    _PLUGINS[plugin.source] = plugin


def unregister(source: str) -> None:
    _PLUGINS.pop(source, None)


@contextmanager
def registered(plugin: CrmPlugin[C]) -> Iterator[CrmPlugin[C]]:
    """``plugin`` registered for the duration of a ``with`` block (tests)."""
    register(plugin)
    try:
        yield plugin
    finally:
        unregister(plugin.source)


def plugins() -> tuple[CrmPlugin[Any], ...]:
    """Every registered source, in registration order (the order webhook URLs are listed in)."""
    return tuple(_PLUGINS.values())


def sources() -> tuple[str, ...]:
    return tuple(_PLUGINS)


def find(source: str) -> CrmPlugin[Any] | None:
    return _PLUGINS.get(source)


def plugin_for(source: str) -> CrmPlugin[Any]:
    """The plugin for ``source``, or ``WebhookRejected`` 404 ``unknown_source`` naming the known ones."""
    plugin = _PLUGINS.get(source)
    if plugin is None:
        raise WebhookRejected(
            404, "unknown_source", f"unknown webhook source {source[:40]!r} (known: {', '.join(_PLUGINS)})"
        )
    return plugin


def crm_plugin(crm: str) -> CrmPlugin[Any] | None:
    """The plugin selected as a system of record by ``crm`` (``CrmPlugin.crm``)."""
    return next((p for p in _PLUGINS.values() if p.crm is not None and p.crm == crm), None)


def configurations() -> tuple[type[BaseModel], ...]:
    """The distinct tenant-settings models of the registered sources."""
    return tuple(dict.fromkeys(p.configuration for p in _PLUGINS.values()))

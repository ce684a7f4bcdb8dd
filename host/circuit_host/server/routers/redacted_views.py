"""Response models that show settings without their secrets, generated from the settings models.

Each ``SecretStr`` in a settings model becomes a ``SecretState`` here. The values come from
``TenantSettings.redacted()``. A secret field added to any settings model, the host's or a CRM
plugin's, is therefore masked in the answers and in the OpenAPI document, with no change here.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from functools import cache
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model

from ...connectors.crm import crm_registry
from ...execution.callout_policy import NamedCredential
from ...platform import TenantSettings
from ...platform.settings import holds_secret


class SecretState(BaseModel):
    """A secret as an operator may see it: whether it is set, and which value it is."""

    set: bool
    fingerprint: str | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="12 hex digits derived from the value (absent when not set): equal values, equal fingerprints.",
    )


def redacted_model(model: type[BaseModel], *more: type[BaseModel], extra: bool = False) -> type[BaseModel]:
    """A response model with ``model``'s fields (and those of ``more``), every secret a ``SecretState``.

    ``extra`` lets keys through that the models do not know yet (settings of a CRM plugin registered
    later, already redacted by value).
    """
    fields: dict[str, Any] = {}
    for source in (model, *more):
        for name, info in source.model_fields.items():
            fields[name] = (_shown(info.annotation), Field(description=info.description))
    config = ConfigDict(extra="allow" if extra else "ignore")
    return create_model(f"{model.__name__}View", __config__=config, **fields)


def settings_view(configurations: Iterable[type[BaseModel]]) -> type[BaseModel]:
    """The shape of ``GET /v1/settings``: the host's settings and each webhook source's."""
    return redacted_model(TenantSettings, *configurations, extra=True)


@cache
def _view_of(model: type[BaseModel]) -> type[BaseModel]:
    return redacted_model(model)


def _shown(annotation: Any) -> Any:
    """``annotation`` with every ``SecretStr`` in it (through models, unions and containers) replaced."""
    if not holds_secret(annotation):
        return annotation
    if isinstance(annotation, type):
        if issubclass(annotation, SecretStr):
            return SecretState
        if issubclass(annotation, BaseModel):
            return _view_of(annotation)
    origin, args = get_origin(annotation), tuple(_shown(a) for a in get_args(annotation))
    if origin is typing.Union or origin is types.UnionType:
        if SecretState in args:  # an unset secret is shown as {"set": false}, never null
            args = tuple(a for a in args if a is not type(None))
        return typing.Union[args] if len(args) > 1 else args[0]  # noqa: UP007 (rebuilt from a tuple)
    return origin[args] if len(args) > 1 else origin[args[0]]


SettingsView = settings_view(crm_registry.configurations())
CredentialView = create_model(
    "NamedCredentialEntry",
    __base__=_view_of(NamedCredential),
    name=(str, Field(description="what circuits call it: `callout:NAME/path`")),
    used_by=(list[str], Field(description="active circuits that declare it, as `env: circuit version`")),
)

"""Configuration of the Salesforce connector: built at the edge from host configuration, never from a guest.

Secrets are ``SecretStr``: their ``repr`` and ``str`` hide the value, so a settings object
can be logged safely; only the HTTP layer calls ``get_secret_value()``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_API_VERSION = re.compile(r"\d{2,3}\.\d")


class SalesforceSettings(BaseModel):
    """One Salesforce org: a ready access token, or the OAuth client-credentials flow.

    ``crm`` names it as a tenant environment's system of record (``system_of_record`` setting).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: Literal["salesforce"] = "salesforce"
    instance_url: AnyHttpUrl
    api_version: str = "61.0"
    access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: AnyHttpUrl | None = None
    """Defaults to ``{instance_url}/services/oauth2/token``."""
    idempotency_field: str | None = None
    """An external-id text field (e.g. ``Circuit_Provisional_Id__c``) present on every object the
    circuits insert. When set, inserts are sent as upserts keyed by the provisional id, so a
    resend after a crash updates the record instead of creating a second one."""
    timeout_s: float = Field(30.0, gt=0)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.removeprefix("v")
        if not _API_VERSION.fullmatch(value):
            raise ValueError("api_version must look like 61.0")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceSettings:
        oauth = self.client_id is not None and self.client_secret is not None
        if self.access_token is None and not oauth:
            raise ValueError("set access_token, or client_id and client_secret for the client-credentials flow")
        return self

    @property
    def base_url(self) -> str:
        return str(self.instance_url).rstrip("/")

    @property
    def oauth_token_url(self) -> str:
        return str(self.token_url) if self.token_url else f"{self.base_url}/services/oauth2/token"

"""Configuration of the CRM connectors: built at the edge from host configuration, never from a guest.

Secrets are ``SecretStr``: their ``repr`` and ``str`` hide the value, so a settings object
can be logged safely; only the HTTP layer calls ``get_secret_value()``.
"""

from __future__ import annotations

import re

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_API_VERSION = re.compile(r"\d{2,3}\.\d")


class RetryPolicy(BaseModel):
    """How the outbox dispatcher retries a failed send: exponential backoff with full jitter."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(8, ge=1)
    base_delay_s: float = Field(2.0, ge=0)
    max_delay_s: float = Field(600.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    """Fraction of each delay that is randomised: 0 gives exact doubling, 1 gives full jitter."""
    max_retry_after_s: float = Field(3600.0, ge=0)
    """A CRM's ``Retry-After`` is honoured up to this cap."""
    lease_s: float = Field(300.0, gt=0)
    """How long a claimed entry stays claimed; a dispatcher that died mid-send is retried after it."""


class SalesforceSettings(BaseModel):
    """One Salesforce org: a ready access token, or the OAuth client-credentials flow."""

    model_config = ConfigDict(frozen=True)

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


class GoHighLevelSettings(BaseModel):
    """One GoHighLevel sub-account (location) reached with a private-integration or OAuth token."""

    model_config = ConfigDict(frozen=True)

    location_id: str = Field(min_length=1)
    api_key: SecretStr
    base_url: AnyHttpUrl = AnyHttpUrl("https://services.leadconnectorhq.com")
    api_version: str = "2021-07-28"
    custom_fields: dict[str, str] = Field(default_factory=dict)
    """Explicit circuit field -> GHL custom-field key (``contact.score``) or id; fields not listed
    map by name: ``VLPR_Score__c`` -> key ``contact.vlpr_score``."""
    custom_field_ttl_s: float = Field(300.0, ge=0)
    timeout_s: float = Field(30.0, gt=0)

    @property
    def root(self) -> str:
        return str(self.base_url).rstrip("/")

"""Configuration of GoHighLevel: the connector's (one location, built at the edge from host
configuration) and a tenant's webhook settings (keys, accepted locations, custom-field mapping).

Secrets are ``SecretStr``: their ``repr`` and ``str`` hide the value, so a settings object
can be logged safely; only the HTTP layer calls ``get_secret_value()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator

from ....errors import Rejected
from .authenticity import GhlKeys, parse_ed25519_public_key, parse_rsa_public_key
from .webhook import GhlMapping


class GoHighLevelSettings(BaseModel):
    """One GoHighLevel sub-account (location) reached with a private-integration or OAuth token.

    ``crm`` names it as a tenant environment's system of record (``system_of_record`` setting).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    crm: Literal["gohighlevel"] = "gohighlevel"
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


class GoHighLevelWebhookSettings(BaseModel):
    """A tenant's GoHighLevel webhook settings (flat keys of its ``TenantSettings``).

    Keys are validated when set, so a tenant can never be configured with a key the verifier
    would fail to load. ``ghl_public_key`` is GoHighLevel's Ed25519 key, as PEM or as base64
    (the raw 32 bytes or the DER SubjectPublicKeyInfo).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_unsigned_ghl: bool = Field(False, description="Accept unsigned GoHighLevel webhooks (unsafe).")
    ghl_public_key: str | None = Field(None, description="GoHighLevel Ed25519 public key (PEM or base64).")
    ghl_legacy_rsa_public_key: str | None = Field(None, description="GoHighLevel legacy RSA public key (PEM).")
    ghl_custom_fields: dict[str, str] = Field(
        default_factory=dict,
        description="GoHighLevel custom-field id -> its key or a circuit field name ending in __c.",
    )
    ghl_location_ids: list[str] = Field(
        default_factory=list, description="GoHighLevel locations this tenant accepts (GHL signs all with one key)."
    )

    @field_validator("ghl_public_key")
    @classmethod
    def _ed25519(cls, value: str | None) -> str | None:
        if value is not None:
            _as_value_error(parse_ed25519_public_key, value)
        return value

    @field_validator("ghl_legacy_rsa_public_key")
    @classmethod
    def _rsa(cls, value: str | None) -> str | None:
        if value is not None:
            _as_value_error(parse_rsa_public_key, value)
        return value

    def ghl_ed25519_key(self) -> Ed25519PublicKey | None:
        return None if self.ghl_public_key is None else parse_ed25519_public_key(self.ghl_public_key)

    def ghl_rsa_key(self) -> RSAPublicKey | None:
        key = self.ghl_legacy_rsa_public_key
        return None if key is None else parse_rsa_public_key(key)

    def keys(self) -> GhlKeys:
        return GhlKeys.from_config(
            ghl_public_keys=[self.ghl_public_key] if self.ghl_public_key else [],
            ghl_legacy_rsa_public_keys=[self.ghl_legacy_rsa_public_key] if self.ghl_legacy_rsa_public_key else [],
            allow_unsigned_ghl=self.allow_unsigned_ghl,
            ghl_location_ids=self.ghl_location_ids,
        )

    def mapping(self) -> GhlMapping:
        return GhlMapping(custom_fields=self.ghl_custom_fields)


def _as_value_error(parse: Callable[[str], object], value: str) -> None:
    """Run a key parser inside a pydantic validator (which reports ValueError)."""
    try:
        parse(value)
    except Rejected as exc:
        raise ValueError(str(exc).removeprefix("key: ")) from None

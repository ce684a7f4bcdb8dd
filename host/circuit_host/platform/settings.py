"""Per-tenant settings: rate limit, limit ceilings, webhook keys and secrets, retention.

Keys are validated when set, so a tenant can never be configured with a key the webhook
verifier would fail to load. ``ghl_public_key`` is GoHighLevel's Ed25519 key, as PEM or
as base64 (the raw 32 bytes or the DER SubjectPublicKeyInfo).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ..errors import Rejected
from ..execution.callout_policy import NamedCredential
from ..execution.limits import MIB, LimitsProfile
from ..webhooks.signatures import parse_ed25519_public_key, parse_rsa_public_key


class TenantSettings(BaseModel):
    """What an operator can configure per tenant; defaults are safe for a new tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit_per_minute: int = Field(1000, ge=1, le=10_000_000)
    max_limits: LimitsProfile = Field(default_factory=LimitsProfile, description="Ceiling for manifest overrides.")
    coverage_threshold: int = Field(75, ge=0, le=100, description="Minimum test coverage (%) to deploy.")
    allow_unsigned_ghl: bool = Field(False, description="Accept unsigned GoHighLevel webhooks (unsafe).")
    ghl_public_key: str | None = Field(None, description="GoHighLevel Ed25519 public key (PEM or base64).")
    ghl_legacy_rsa_public_key: str | None = Field(None, description="GoHighLevel legacy RSA public key (PEM).")
    named_credentials: dict[str, NamedCredential] = Field(
        default_factory=dict,
        description="Endpoints and secret headers reached as `callout:NAME/path` by circuits declaring NAME.",
    )
    ghl_custom_fields: dict[str, str] = Field(
        default_factory=dict,
        description="GoHighLevel custom-field id -> its key or a circuit field name ending in __c.",
    )
    ghl_location_ids: list[str] = Field(
        default_factory=list, description="GoHighLevel locations this tenant accepts (GHL signs all with one key)."
    )
    generic_hmac_secret: SecretStr | None = Field(None, description="HMAC-SHA256 secret for generic webhooks.")
    coalesce_window_ms: int = Field(0, ge=0, le=60_000, description="Window to batch webhooks per object.")
    execution_retention_days: int = Field(30, ge=1, le=3650)
    max_request_bytes: int = Field(1 * MIB, ge=1024, le=64 * MIB)

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

    @field_validator("generic_hmac_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("generic_hmac_secret must be at least 16 characters")
        return value

    def ghl_ed25519_key(self) -> Ed25519PublicKey | None:
        return None if self.ghl_public_key is None else parse_ed25519_public_key(self.ghl_public_key)

    def ghl_rsa_key(self) -> RSAPublicKey | None:
        key = self.ghl_legacy_rsa_public_key
        return None if key is None else parse_rsa_public_key(key)

    def to_storage(self) -> dict[str, Any]:
        """JSON for the database, the secret included (``model_dump`` would mask it)."""
        data = self.model_dump(mode="json")
        secret = self.generic_hmac_secret
        data["generic_hmac_secret"] = None if secret is None else secret.get_secret_value()
        data["named_credentials"] = {
            name: {"url": c.url, "headers": c.secret_headers()} for name, c in self.named_credentials.items()
        }
        return data

    @classmethod
    def validated(cls, data: dict[str, Any]) -> TenantSettings:
        """Validate settings from an operator, as ``Rejected`` naming the setting."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            message = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            raise Rejected(f"settings.{where}: {message.removeprefix('Value error, ')}") from None


def _as_value_error(parse: Callable[[str], object], value: str) -> None:
    """Run the webhooks' key parser inside a pydantic validator (which reports ValueError)."""
    try:
        parse(value)
    except Rejected as exc:
        raise ValueError(str(exc).removeprefix("key: ")) from None

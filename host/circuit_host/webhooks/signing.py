"""What every authenticity check shares, and Circuit Script's own HMAC scheme (``X-Circuit-Signature``).

A source's check raises ``WebhookRejected`` (401, or 400/403/413) and returns None when the
webhook is authentic and fresh. Replays of a fresh webhook are the ``ReplayGuard``'s job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..errors import Rejected
from .errors import WebhookRejected
from .model import parse_timestamp

CIRCUIT_SIGNATURE = "X-Circuit-Signature"
DEFAULT_TOLERANCE = timedelta(minutes=5)
MIN_SECRET_BYTES = 16


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, by case-insensitive name."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def unauthorized(reason: str, message: str) -> WebhookRejected:
    return WebhookRejected(401, reason, message)


def require_aware(now: datetime) -> None:
    """``now`` comes from the caller (tests pass a fixed one); a naive one is a programming error."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def check_tolerance(tolerance: timedelta) -> timedelta:
    if tolerance <= timedelta(0):
        raise Rejected("webhook timestamp tolerance must be positive")
    return tolerance


def check_fresh(at: datetime, now: datetime, tolerance: timedelta, what: str) -> None:
    """Refuse a timestamp older than ``tolerance`` or further than it in the future (401 ``stale``)."""
    age = (now - at).total_seconds()
    limit = tolerance.total_seconds()
    if age > limit:
        raise unauthorized("stale", f"{what} is {age:.0f} s old, older than the tolerance of {limit:.0f} s")
    if -age > limit:
        raise unauthorized("stale", f"{what} is {-age:.0f} s in the future, beyond the tolerance of {limit:.0f} s")


def b64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when it is not base64."""
    compact = "".join(text.split())
    if not compact or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", compact):
        return None
    compact = compact.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


# --- X-Circuit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body> -----------------


def signing_secret(secret: str | bytes, name: str) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise Rejected(f"{name}: a signing secret must be at least {MIN_SECRET_BYTES} bytes")
    return raw


@dataclass(frozen=True)
class HmacKeys:
    """Secrets any of which may sign (rotation), and how far ``t`` may be from now."""

    secrets: tuple[bytes, ...] = ()
    tolerance: timedelta = DEFAULT_TOLERANCE

    @classmethod
    def from_config(cls, *, secrets: Iterable[str | bytes] = (), tolerance: timedelta = DEFAULT_TOLERANCE) -> HmacKeys:
        """Parse configured secrets; a short one is ``Rejected`` with which one."""
        return cls(
            secrets=tuple(signing_secret(s, f"secrets[{i}]") for i, s in enumerate(secrets)),
            tolerance=check_tolerance(tolerance),
        )


class CircuitSecretSettings(BaseModel):
    """A tenant's secret for ``X-Circuit-Signature``: the generic source and Salesforce CDC relays sign with it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generic_hmac_secret: SecretStr | None = Field(None, description="HMAC-SHA256 secret for generic webhooks.")

    @field_validator("generic_hmac_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_BYTES:
            raise ValueError(f"generic_hmac_secret must be at least {MIN_SECRET_BYTES} characters")
        return value

    def hmac_keys(self) -> HmacKeys:
        secret = self.generic_hmac_secret
        return HmacKeys.from_config(secrets=[secret.get_secret_value()] if secret else [])


_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def sign_hmac(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The ``X-Circuit-Signature`` value for ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return f"t={timestamp},v1={_hmac_hex(raw, timestamp, body)}"


def _hmac_hex(secret: bytes, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_hmac(body: bytes, headers: Mapping[str, str], keys: HmacKeys, now: datetime, source: str) -> None:
    """Check ``X-Circuit-Signature``: any ``v1`` matching any secret, then the freshness of ``t``."""
    require_aware(now)
    value = header(headers, CIRCUIT_SIGNATURE)
    if value is None:
        raise unauthorized("missing_signature", f"{source} webhook without an {CIRCUIT_SIGNATURE} header")
    if not keys.secrets:
        raise unauthorized(
            "bad_signature", f"no signing secret is configured for {source} webhooks in this environment"
        )
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise unauthorized(
                "bad_signature", f"{CIRCUIT_SIGNATURE} is malformed (expected t=<unix seconds>,v1=<hex>)"
            )
        if name == "t":
            timestamps.append(item)
        elif name == "v1":
            if not _HEX64.match(item):
                raise unauthorized("bad_signature", f"{CIRCUIT_SIGNATURE}: a v1 value must be 64 hex digits")
            candidates.append(item.lower())
        # other schemes (v0, future versions) are ignored, as Stripe does
    if len(timestamps) != 1 or not re.fullmatch(r"\d{1,10}", timestamps[0]):
        raise unauthorized("bad_signature", f"{CIRCUIT_SIGNATURE} needs exactly one t=<unix seconds>")
    if not candidates:
        raise unauthorized("missing_signature", f"{CIRCUIT_SIGNATURE} has no v1 signature")
    t = timestamps[0]
    expected = [_hmac_hex(secret, t, body) for secret in keys.secrets]
    matched = False
    for candidate in candidates:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate, wanted)
    if not matched:
        raise unauthorized("bad_signature", f"{CIRCUIT_SIGNATURE} does not match the body with any configured secret")
    at = parse_timestamp(int(t), f"{CIRCUIT_SIGNATURE} t", naive_is_utc=True)
    check_fresh(at, now, keys.tolerance, f"{CIRCUIT_SIGNATURE} timestamp")


def circuit_signature_check(source: str) -> Callable[[bytes, Mapping[str, str], CircuitSecretSettings, datetime], None]:
    """A source's ``verify`` when it is signed with ``X-Circuit-Signature`` and the tenant's secret."""

    def verify(body: bytes, headers: Mapping[str, str], settings: CircuitSecretSettings, now: datetime) -> None:
        verify_hmac(body, headers, settings.hmac_keys(), now, source)

    return verify

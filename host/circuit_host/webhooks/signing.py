"""Authenticity: GoHighLevel's Ed25519 (and legacy RSA) signatures, and our HMAC scheme.

``verify`` raises ``WebhookRejected`` (401, or 400/403/404/413) and returns None when the
webhook is authentic and fresh. Replays of a fresh webhook are the ``ReplayGuard``'s job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ..errors import Rejected
from .errors import WebhookRejected, malformed
from .model import DEFAULT_LIMITS, SOURCES, BodyLimits, expect_object, parse_json, parse_timestamp

GHL_SIGNATURE = "X-GHL-Signature"
GHL_LEGACY_SIGNATURE = "X-WH-Signature"
CIRCUIT_SIGNATURE = "X-Circuit-Signature"
DEFAULT_TOLERANCE = timedelta(minutes=5)
MIN_SECRET_BYTES = 16
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class WebhookKeys:
    """One tenant environment's webhook verification material. Build it with ``from_config``.

    - ``ghl_ed25519`` / ``ghl_rsa``: GoHighLevel's public keys (several allowed, for rotation).
    - ``allow_unsigned_ghl``: accept unsigned GHL webhooks, only when no GHL key is configured (unsafe: README).
    - ``ghl_location_ids``: the GHL locations this environment belongs to; when set, a webhook for
      another location is refused (GoHighLevel signs every location's webhooks with the same key).
    - ``generic_secrets`` / ``salesforce_cdc_secrets``: HMAC secrets, any of which may sign (rotation).
    - ``tolerance``: how far a timestamp may be in the past or the future.
    """

    ghl_ed25519: tuple[Ed25519PublicKey, ...] = ()
    ghl_rsa: tuple[RSAPublicKey, ...] = ()
    allow_unsigned_ghl: bool = False
    ghl_location_ids: frozenset[str] = frozenset()
    generic_secrets: tuple[bytes, ...] = ()
    salesforce_cdc_secrets: tuple[bytes, ...] = ()
    tolerance: timedelta = DEFAULT_TOLERANCE
    limits: BodyLimits = field(default=DEFAULT_LIMITS)

    @classmethod
    def from_config(
        cls,
        *,
        ghl_public_keys: Iterable[str | bytes] = (),
        ghl_legacy_rsa_public_keys: Iterable[str | bytes] = (),
        allow_unsigned_ghl: bool = False,
        ghl_location_ids: Iterable[str] = (),
        generic_secrets: Iterable[str | bytes] = (),
        salesforce_cdc_secrets: Iterable[str | bytes] = (),
        tolerance: timedelta = DEFAULT_TOLERANCE,
        limits: BodyLimits = DEFAULT_LIMITS,
    ) -> WebhookKeys:
        """Parse configured keys; a bad one is ``Rejected`` with which one and why."""
        if tolerance <= timedelta(0):
            raise Rejected("webhook timestamp tolerance must be positive")
        return cls(
            ghl_ed25519=tuple(
                parse_ed25519_public_key(k, f"ghl_public_keys[{i}]") for i, k in enumerate(ghl_public_keys)
            ),
            ghl_rsa=tuple(
                parse_rsa_public_key(k, f"ghl_legacy_rsa_public_keys[{i}]")
                for i, k in enumerate(ghl_legacy_rsa_public_keys)
            ),
            allow_unsigned_ghl=allow_unsigned_ghl,
            ghl_location_ids=frozenset(ghl_location_ids),
            generic_secrets=tuple(_secret(s, f"generic_secrets[{i}]") for i, s in enumerate(generic_secrets)),
            salesforce_cdc_secrets=tuple(
                _secret(s, f"salesforce_cdc_secrets[{i}]") for i, s in enumerate(salesforce_cdc_secrets)
            ),
            tolerance=tolerance,
            limits=limits,
        )


def parse_ed25519_public_key(key: str | bytes, name: str = "key") -> Ed25519PublicKey:
    """A PEM ``PUBLIC KEY``, or base64 of the raw 32 bytes (or of the DER SubjectPublicKeyInfo)."""
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode())
        else:
            raw = _b64(text)
            if raw is None:
                raise Rejected(f"{name}: not PEM and not base64")
            loaded = (
                Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else serialization.load_der_public_key(raw)
            )
    except Rejected:
        raise
    except (ValueError, TypeError) as exc:
        raise Rejected(f"{name}: not an Ed25519 public key ({exc})") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise Rejected(f"{name}: expected an Ed25519 public key, got {type(loaded).__name__}")
    return loaded


def parse_rsa_public_key(key: str | bytes, name: str = "key") -> RSAPublicKey:
    """A PEM (``PUBLIC KEY`` or ``RSA PUBLIC KEY``) or base64 DER RSA public key of at least 2048 bits."""
    text = (key.decode("ascii", "replace") if isinstance(key, bytes) else key).strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode())
        else:
            raw = _b64(text)
            if raw is None:
                raise Rejected(f"{name}: not PEM and not base64")
            loaded = serialization.load_der_public_key(raw)
    except Rejected:
        raise
    except (ValueError, TypeError) as exc:
        raise Rejected(f"{name}: not an RSA public key ({exc})") from None
    if not isinstance(loaded, RSAPublicKey):
        raise Rejected(f"{name}: expected an RSA public key, got {type(loaded).__name__}")
    if loaded.key_size < MIN_RSA_BITS:
        raise Rejected(f"{name}: RSA key of {loaded.key_size} bits, under the minimum of {MIN_RSA_BITS}")
    return loaded


def _secret(secret: str | bytes, name: str) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise Rejected(f"{name}: a signing secret must be at least {MIN_SECRET_BYTES} bytes")
    return raw


def _b64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; None when it is not base64."""
    compact = "".join(text.split())
    if not compact or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", compact):
        return None
    compact = compact.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, by case-insensitive name."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _unauthorized(reason: str, message: str) -> WebhookRejected:
    return WebhookRejected(401, reason, message)


def check_fresh(at: datetime, now: datetime, tolerance: timedelta, what: str) -> None:
    """Refuse a timestamp older than ``tolerance`` or further than it in the future (401 ``stale``)."""
    age = (now - at).total_seconds()
    limit = tolerance.total_seconds()
    if age > limit:
        raise _unauthorized("stale", f"{what} is {age:.0f} s old, older than the tolerance of {limit:.0f} s")
    if -age > limit:
        raise _unauthorized("stale", f"{what} is {-age:.0f} s in the future, beyond the tolerance of {limit:.0f} s")


def verify(
    source: str,
    body: bytes,
    headers: Mapping[str, str],
    keys: WebhookKeys,
    now: datetime | None = None,
) -> None:
    """Check that ``body`` really comes from ``source``'s sender and is fresh; raise ``WebhookRejected`` if not.

    ``now`` (timezone-aware) defaults to the current time; tests pass a fixed one.
    """
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if source == "ghl":
        _verify_ghl(body, headers, keys, now)
    elif source == "generic":
        verify_hmac(body, headers, keys.generic_secrets, keys.tolerance, now, "generic")
    elif source == "salesforce-cdc":
        verify_hmac(body, headers, keys.salesforce_cdc_secrets, keys.tolerance, now, "salesforce-cdc")
    else:
        raise WebhookRejected(
            404, "unknown_source", f"unknown webhook source {source[:40]!r} (known: {', '.join(SOURCES)})"
        )


# --- GoHighLevel ----------------------------------------------------------------------------


def _verify_ghl(body: bytes, headers: Mapping[str, str], keys: WebhookKeys, now: datetime) -> None:
    ed25519 = header(headers, GHL_SIGNATURE)
    legacy = header(headers, GHL_LEGACY_SIGNATURE)
    if keys.ghl_ed25519 and ed25519 is not None:
        signature = _signature(ed25519, GHL_SIGNATURE, 64)
        if not any(_ed25519_ok(key, signature, body) for key in keys.ghl_ed25519):
            raise _unauthorized("bad_signature", f"{GHL_SIGNATURE} does not verify against the configured Ed25519 key")
    elif keys.ghl_rsa and legacy is not None:
        signature = _signature(legacy, GHL_LEGACY_SIGNATURE, None)
        if not any(_rsa_ok(key, signature, body) for key in keys.ghl_rsa):
            raise _unauthorized(
                "bad_signature", f"{GHL_LEGACY_SIGNATURE} does not verify against the configured RSA key"
            )
    elif keys.ghl_ed25519 or keys.ghl_rsa:
        expected = " or ".join(
            name
            for name, configured in ((GHL_SIGNATURE, keys.ghl_ed25519), (GHL_LEGACY_SIGNATURE, keys.ghl_rsa))
            if configured
        )
        raise _unauthorized("missing_signature", f"GoHighLevel webhook without an {expected} header")
    elif not keys.allow_unsigned_ghl:
        raise _unauthorized(
            "unsigned_not_allowed",
            "no GoHighLevel public key is configured for this environment, and it does not accept unsigned "
            "webhooks: configure GoHighLevel's Ed25519 public key (X-GHL-Signature), or opt in to unsigned "
            "webhooks knowing that anyone who learns the webhook URL can then forge CRM events",
        )

    payload = expect_object(parse_json(body, keys.limits), "GoHighLevel webhook")
    location = payload.get("locationId")
    if keys.ghl_location_ids and location not in keys.ghl_location_ids:
        shown = location[:40] if isinstance(location, str) else location
        raise WebhookRejected(
            403, "wrong_location", f"GoHighLevel location {shown!r} is not one this environment is configured for"
        )
    timestamp = payload.get("timestamp")
    if timestamp is None:
        raise malformed("GoHighLevel webhook: field 'timestamp' is missing (it is needed to refuse stale webhooks)")
    at = parse_timestamp(timestamp, "GoHighLevel webhook: timestamp", naive_is_utc=True)
    check_fresh(at, now, keys.tolerance, "GoHighLevel webhook timestamp")


def _signature(value: str, name: str, size: int | None) -> bytes:
    raw = _b64(value)
    if raw is None or (size is not None and len(raw) != size):
        what = "not base64" if raw is None else f"{len(raw)} bytes, expected {size}"
        raise _unauthorized("bad_signature", f"{name} is malformed ({what})")
    return raw


def _ed25519_ok(key: Ed25519PublicKey, signature: bytes, body: bytes) -> bool:
    try:
        key.verify(signature, body)
    except InvalidSignature:
        return False
    return True


def _rsa_ok(key: RSAPublicKey, signature: bytes, body: bytes) -> bool:
    try:
        key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# --- HMAC (generic, salesforce-cdc) ---------------------------------------------------------

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def sign_hmac(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The ``X-Circuit-Signature`` value for ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return f"t={timestamp},v1={_hmac_hex(raw, timestamp, body)}"


def _hmac_hex(secret: bytes, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_hmac(
    body: bytes,
    headers: Mapping[str, str],
    secrets: tuple[bytes, ...],
    tolerance: timedelta,
    now: datetime,
    source: str,
) -> None:
    """Check ``X-Circuit-Signature``: any ``v1`` matching any secret, then the freshness of ``t``."""
    value = header(headers, CIRCUIT_SIGNATURE)
    if value is None:
        raise _unauthorized("missing_signature", f"{source} webhook without an {CIRCUIT_SIGNATURE} header")
    if not secrets:
        raise _unauthorized(
            "bad_signature", f"no signing secret is configured for {source} webhooks in this environment"
        )
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise _unauthorized(
                "bad_signature", f"{CIRCUIT_SIGNATURE} is malformed (expected t=<unix seconds>,v1=<hex>)"
            )
        if name == "t":
            timestamps.append(item)
        elif name == "v1":
            if not _HEX64.match(item):
                raise _unauthorized("bad_signature", f"{CIRCUIT_SIGNATURE}: a v1 value must be 64 hex digits")
            candidates.append(item.lower())
        # other schemes (v0, future versions) are ignored, as Stripe does
    if len(timestamps) != 1 or not re.fullmatch(r"\d{1,10}", timestamps[0]):
        raise _unauthorized("bad_signature", f"{CIRCUIT_SIGNATURE} needs exactly one t=<unix seconds>")
    if not candidates:
        raise _unauthorized("missing_signature", f"{CIRCUIT_SIGNATURE} has no v1 signature")
    t = timestamps[0]
    expected = [_hmac_hex(secret, t, body) for secret in secrets]
    matched = False
    for candidate in candidates:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate, wanted)
    if not matched:
        raise _unauthorized("bad_signature", f"{CIRCUIT_SIGNATURE} does not match the body with any configured secret")
    at = parse_timestamp(int(t), f"{CIRCUIT_SIGNATURE} t", naive_is_utc=True)
    check_fresh(at, now, tolerance, f"{CIRCUIT_SIGNATURE} timestamp")

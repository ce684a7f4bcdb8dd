"""GoHighLevel's webhook signatures: Ed25519 (``X-GHL-Signature``) and the legacy RSA one (``X-WH-Signature``).

GoHighLevel signs every location's webhooks with the same key, so a tenant also names the
locations it accepts; and the signed body's ``timestamp`` must be fresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ....errors import Rejected
from ....webhooks.errors import WebhookRejected, malformed
from ....webhooks.model import DEFAULT_LIMITS, BodyLimits, expect_object, parse_json, parse_timestamp
from ....webhooks.signing import (
    DEFAULT_TOLERANCE,
    b64,
    check_fresh,
    check_tolerance,
    header,
    require_aware,
    unauthorized,
)

GHL_SIGNATURE = "X-GHL-Signature"
GHL_LEGACY_SIGNATURE = "X-WH-Signature"
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class GhlKeys:
    """One tenant's GoHighLevel verification material. Build it with ``from_config``.

    - ``ed25519`` / ``rsa``: GoHighLevel's public keys (several allowed, for rotation).
    - ``allow_unsigned``: accept unsigned webhooks, only when no key is configured (unsafe: README).
    - ``location_ids``: the locations this environment belongs to; a webhook for another location
      is refused, and every webhook is while none is configured (GoHighLevel signs every
      location's webhooks with the same key).
    - ``tolerance``: how far the body's timestamp may be in the past or the future.
    """

    ed25519: tuple[Ed25519PublicKey, ...] = ()
    rsa: tuple[RSAPublicKey, ...] = ()
    allow_unsigned: bool = False
    location_ids: frozenset[str] = frozenset()
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
        tolerance: timedelta = DEFAULT_TOLERANCE,
        limits: BodyLimits = DEFAULT_LIMITS,
    ) -> GhlKeys:
        """Parse configured keys; a bad one is ``Rejected`` with which one and why."""
        return cls(
            ed25519=tuple(parse_ed25519_public_key(k, f"ghl_public_keys[{i}]") for i, k in enumerate(ghl_public_keys)),
            rsa=tuple(
                parse_rsa_public_key(k, f"ghl_legacy_rsa_public_keys[{i}]")
                for i, k in enumerate(ghl_legacy_rsa_public_keys)
            ),
            allow_unsigned=allow_unsigned_ghl,
            location_ids=frozenset(ghl_location_ids),
            tolerance=check_tolerance(tolerance),
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
            raw = b64(text)
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
            raw = b64(text)
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


def verify_ghl(body: bytes, headers: Mapping[str, str], keys: GhlKeys, now: datetime) -> None:
    """Check the signature (before the body is parsed), then the location and the timestamp's freshness."""
    require_aware(now)
    ed25519 = header(headers, GHL_SIGNATURE)
    legacy = header(headers, GHL_LEGACY_SIGNATURE)
    if keys.ed25519 and ed25519 is not None:
        signature = _signature(ed25519, GHL_SIGNATURE, 64)
        if not any(_ed25519_ok(key, signature, body) for key in keys.ed25519):
            raise unauthorized("bad_signature", f"{GHL_SIGNATURE} does not verify against the configured Ed25519 key")
    elif keys.rsa and legacy is not None:
        signature = _signature(legacy, GHL_LEGACY_SIGNATURE, None)
        if not any(_rsa_ok(key, signature, body) for key in keys.rsa):
            raise unauthorized(
                "bad_signature", f"{GHL_LEGACY_SIGNATURE} does not verify against the configured RSA key"
            )
    elif keys.ed25519 or keys.rsa:
        expected = " or ".join(
            name for name, configured in ((GHL_SIGNATURE, keys.ed25519), (GHL_LEGACY_SIGNATURE, keys.rsa)) if configured
        )
        raise unauthorized("missing_signature", f"GoHighLevel webhook without an {expected} header")
    elif not keys.allow_unsigned:
        raise unauthorized(
            "unsigned_not_allowed",
            "no GoHighLevel public key is configured for this environment, and it does not accept unsigned "
            "webhooks: configure GoHighLevel's Ed25519 public key (X-GHL-Signature), or opt in to unsigned "
            "webhooks knowing that anyone who learns the webhook URL can then forge CRM events",
        )

    payload = expect_object(parse_json(body, keys.limits), "GoHighLevel webhook")
    location = payload.get("locationId")
    if not keys.location_ids:  # GHL signs every location's webhooks with one key: name yours first
        raise WebhookRejected(
            403,
            "no_locations",
            "GoHighLevel webhooks are refused until the tenant's ghl_location_ids name the locations it accepts",
        )
    if location not in keys.location_ids:
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
    raw = b64(value)
    if raw is None or (size is not None and len(raw) != size):
        what = "not base64" if raw is None else f"{len(raw)} bytes, expected {size}"
        raise unauthorized("bad_signature", f"{name} is malformed ({what})")
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

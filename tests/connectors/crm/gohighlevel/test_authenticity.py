"""GoHighLevel webhook authenticity with real keys: Ed25519, legacy RSA, the location, the timestamp."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from circuit_host.connectors.crm.gohighlevel import (
    GOHIGHLEVEL,
    GhlKeys,
    GoHighLevelWebhookSettings,
    parse_ed25519_public_key,
    parse_rsa_public_key,
    verify_ghl,
)
from circuit_host.errors import Rejected
from circuit_host.webhooks import WebhookRejected
from tests.webhooks.helpers import at, body, data, dumps

GHL_BODY = body("ghl_contact_create")
GHL_SENT = at("2026-08-03T14:35:12.402Z")  # the fixture's timestamp
NOW = GHL_SENT + timedelta(seconds=3)
SECRET = "whsec_8f3b2a1c9d7e6f5a4b3c2d1e"

LOCATION = "ve9EPM428h8vShlRW1KT"  # the locationId of GHL_BODY


@pytest.fixture(scope="module")
def ed25519_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: Any) -> str:
    text: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return text.decode()


def ed25519_sign(key: Ed25519PrivateKey, raw: bytes) -> str:
    return base64.b64encode(key.sign(raw)).decode()


def rsa_sign(key: rsa.RSAPrivateKey, raw: bytes) -> str:
    return base64.b64encode(key.sign(raw, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(raw: bytes, headers: dict[str, str], keys: GhlKeys, now: datetime = NOW) -> None:
    verify_ghl(raw, headers, keys, now)


def rejected(raw: bytes, headers: dict[str, str], keys: GhlKeys, now: datetime = NOW) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify(raw, headers, keys, now)
    return caught.value


# --- GoHighLevel Ed25519 ----------------------------------------------------------------------


def test_ghl_ed25519_signature_verifies(ed25519_key: Ed25519PrivateKey) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
    verify(GHL_BODY, {"x-ghl-signature": ed25519_sign(ed25519_key, GHL_BODY)}, keys, NOW)
    # header names are case-insensitive, and the key may be given as base64 of its raw 32 bytes
    raw = ed25519_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[base64.b64encode(raw).decode()])
    verify(GHL_BODY, {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}, keys, NOW)


def test_ghl_tampered_body_is_401(ed25519_key: Ed25519PrivateKey) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
    signature = ed25519_sign(ed25519_key, GHL_BODY)
    tampered = GHL_BODY.replace(b'"value": 450', b'"value": 4500')
    error = rejected(tampered, {"X-GHL-Signature": signature}, keys)
    assert (error.status, error.reason) == (401, "bad_signature")
    assert error.message == "X-GHL-Signature does not verify against the configured Ed25519 key"
    assert signature not in error.message


def test_ghl_wrong_key_is_401_and_a_rotated_key_set_accepts(ed25519_key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    headers = {"X-GHL-Signature": ed25519_sign(other, GHL_BODY)}
    assert (
        rejected(
            GHL_BODY, headers, GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
        ).status
        == 401
    )
    verify(
        GHL_BODY,
        headers,
        GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key), pem(other)]),
        NOW,
    )


@pytest.mark.parametrize(
    "value, what", [("not base64!", "not base64"), (base64.b64encode(b"x" * 63).decode(), "63 bytes")]
)
def test_ghl_malformed_signature_header(ed25519_key: Ed25519PrivateKey, value: str, what: str) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
    error = rejected(GHL_BODY, {"X-GHL-Signature": value}, keys)
    assert error.status == 401 and what in error.message


def test_ghl_missing_signature_names_the_expected_header(
    ed25519_key: Ed25519PrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)], allow_unsigned_ghl=True)
    error = rejected(GHL_BODY, {}, keys)  # opting in to unsigned does not apply once a key is configured
    assert (error.status, error.reason) == (401, "missing_signature")
    assert error.message == "GoHighLevel webhook without an X-GHL-Signature header"
    both = GhlKeys.from_config(
        ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)], ghl_legacy_rsa_public_keys=[pem(rsa_key)]
    )
    assert "X-GHL-Signature or X-WH-Signature" in rejected(GHL_BODY, {}, both).message


def test_ghl_legacy_header_is_not_enough_when_only_ed25519_is_configured(
    ed25519_key: Ed25519PrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
    error = rejected(GHL_BODY, {"X-WH-Signature": rsa_sign(rsa_key, GHL_BODY)}, keys)
    assert error.reason == "missing_signature"


# --- GoHighLevel legacy RSA -------------------------------------------------------------------


def test_ghl_legacy_rsa_signature(rsa_key: rsa.RSAPrivateKey, ed25519_key: Ed25519PrivateKey) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_legacy_rsa_public_keys=[pem(rsa_key)])
    verify(GHL_BODY, {"X-WH-Signature": rsa_sign(rsa_key, GHL_BODY)}, keys, NOW)
    error = rejected(GHL_BODY + b" ", {"X-WH-Signature": rsa_sign(rsa_key, GHL_BODY)}, keys)
    assert error.message == "X-WH-Signature does not verify against the configured RSA key"
    wrong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert rejected(GHL_BODY, {"X-WH-Signature": rsa_sign(wrong, GHL_BODY)}, keys).status == 401
    # with both keys configured and both headers sent, Ed25519 decides
    both = GhlKeys.from_config(
        ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)], ghl_legacy_rsa_public_keys=[pem(rsa_key)]
    )
    headers = {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY), "X-WH-Signature": rsa_sign(wrong, GHL_BODY)}
    verify(GHL_BODY, headers, both, NOW)
    headers = {
        "X-GHL-Signature": ed25519_sign(Ed25519PrivateKey.generate(), GHL_BODY),
        "X-WH-Signature": rsa_sign(rsa_key, GHL_BODY),
    }
    assert rejected(GHL_BODY, headers, both).reason == "bad_signature"


# --- GoHighLevel unsigned, location, freshness -------------------------------------------------


def test_ghl_without_keys_refuses_unsigned_unless_opted_in() -> None:
    error = rejected(GHL_BODY, {}, GhlKeys())
    assert (error.status, error.reason) == (401, "unsigned_not_allowed")
    assert "no GoHighLevel public key is configured" in error.message and "forge" in error.message
    verify(GHL_BODY, {}, GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True), NOW)


def test_ghl_webhooks_are_refused_until_the_tenant_names_its_locations(ed25519_key: Ed25519PrivateKey) -> None:
    """GoHighLevel signs every location's webhooks with one key: without locations, any location's
    signed webhook would be accepted (issue 11, item 8)."""
    headers = {"x-ghl-signature": ed25519_sign(ed25519_key, GHL_BODY)}
    error = rejected(GHL_BODY, headers, GhlKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_location_ids=[]))
    assert (error.status, error.reason) == (403, "no_locations")


def test_ghl_location_must_be_the_environments(ed25519_key: Ed25519PrivateKey) -> None:
    headers = {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}
    keys = GhlKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_location_ids=["ve9EPM428h8vShlRW1KT"])
    verify(GHL_BODY, headers, keys, NOW)
    elsewhere = GhlKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_location_ids=["OtherLocation0000001"])
    error = rejected(GHL_BODY, headers, elsewhere)
    assert (error.status, error.reason) == (403, "wrong_location")


@pytest.mark.parametrize(
    "now, message",
    [
        (
            GHL_SENT + timedelta(minutes=5, seconds=1),
            "GoHighLevel webhook timestamp is 301 s old, older than the tolerance of 300 s",
        ),
        (
            GHL_SENT - timedelta(minutes=6),
            "GoHighLevel webhook timestamp is 360 s in the future, beyond the tolerance of 300 s",
        ),
    ],
)
def test_ghl_stale_and_future_timestamps(ed25519_key: Ed25519PrivateKey, now: datetime, message: str) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
    error = rejected(GHL_BODY, {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}, keys, now)
    assert (error.status, error.reason, error.message) == (401, "stale", message)


def test_ghl_tolerance_is_configurable_and_applies_to_unsigned_too() -> None:
    keys = GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True, tolerance=timedelta(hours=1))
    verify(GHL_BODY, {}, keys, GHL_SENT + timedelta(minutes=59))
    assert rejected(GHL_BODY, {}, keys, GHL_SENT + timedelta(minutes=61)).reason == "stale"
    assert (
        rejected(
            GHL_BODY,
            {},
            GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True),
            GHL_SENT + timedelta(minutes=6),
        ).reason
        == "stale"
    )


def test_ghl_epoch_millisecond_timestamps() -> None:
    raw = dumps({**data("ghl_contact_create"), "timestamp": int(GHL_SENT.timestamp() * 1000)})
    verify(raw, {}, GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True), NOW)


def test_ghl_without_timestamp_is_400() -> None:
    payload = data("ghl_contact_create")
    del payload["timestamp"]
    error = rejected(dumps(payload), {}, GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True))
    assert error.status == 400 and "field 'timestamp' is missing" in error.message


def test_ghl_signature_is_checked_before_the_body_is_parsed(ed25519_key: Ed25519PrivateKey) -> None:
    keys = GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(ed25519_key)])
    assert (
        rejected(b"{not json", {"X-GHL-Signature": ed25519_sign(Ed25519PrivateKey.generate(), b"{")}, keys).status
        == 401
    )
    assert rejected(b"{not json", {}, GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True)).status == 400


# --- configuration ------------------------------------------------------------------------------


def test_key_configuration_errors_are_precise(rsa_key: rsa.RSAPrivateKey, ed25519_key: Ed25519PrivateKey) -> None:
    with pytest.raises(Rejected, match=r"ghl_public_keys\[0\]: expected an Ed25519 public key, got .*RSAPublicKey"):
        GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[pem(rsa_key)])
    with pytest.raises(Rejected, match=r"ghl_public_keys\[0\]: not PEM and not base64"):
        GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=["hello world!"])
    with pytest.raises(Rejected, match=r"ghl_public_keys\[0\]: not an Ed25519 public key"):
        GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_public_keys=[base64.b64encode(b"x" * 31).decode()])
    with pytest.raises(Rejected, match=r"ghl_legacy_rsa_public_keys\[0\]: expected an RSA public key"):
        GhlKeys.from_config(ghl_location_ids=[LOCATION], ghl_legacy_rsa_public_keys=[pem(ed25519_key)])
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(Rejected, match="RSA key of 1024 bits, under the minimum of 2048"):
        parse_rsa_public_key(pem(small))
    with pytest.raises(Rejected, match="tolerance must be positive"):
        GhlKeys.from_config(ghl_location_ids=[LOCATION], tolerance=timedelta(0))


def test_public_keys_in_der_base64(ed25519_key: Ed25519PrivateKey, rsa_key: rsa.RSAPrivateKey) -> None:
    def der(key: Any) -> str:
        raw: bytes = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(raw).decode()

    assert parse_ed25519_public_key(der(ed25519_key)) == ed25519_key.public_key()
    assert parse_rsa_public_key(der(rsa_key)) == rsa_key.public_key()


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(GHL_BODY, {}, GhlKeys(location_ids=frozenset({LOCATION}), allow_unsigned=True), datetime(2026, 1, 1))


def test_the_plugin_verifies_with_the_tenants_settings(ed25519_key: Ed25519PrivateKey) -> None:
    raw_key = ed25519_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    settings = GoHighLevelWebhookSettings(
        ghl_public_key=base64.b64encode(raw_key).decode(), ghl_location_ids=["ve9EPM428h8vShlRW1KT"]
    )
    GOHIGHLEVEL.verify(GHL_BODY, {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}, settings, NOW)
    with pytest.raises(WebhookRejected) as caught:
        GOHIGHLEVEL.verify(GHL_BODY, {}, GoHighLevelWebhookSettings(), NOW)
    assert caught.value.reason == "unsigned_not_allowed"
    GOHIGHLEVEL.verify(
        GHL_BODY, {}, GoHighLevelWebhookSettings(allow_unsigned_ghl=True, ghl_location_ids=[LOCATION]), NOW
    )

"""Authenticity with real keys: Ed25519 and RSA for GoHighLevel, HMAC-SHA256 for generic and salesforce-cdc."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from circuit_host.errors import Rejected
from circuit_host.webhooks import (
    WebhookKeys,
    WebhookRejected,
    parse_ed25519_public_key,
    parse_rsa_public_key,
    sign_hmac,
    verify,
)

from .helpers import at, body, data, dumps

GHL_BODY = body("ghl_contact_create")
GHL_SENT = at("2026-08-03T14:35:12.402Z")  # the fixture's timestamp
NOW = GHL_SENT + timedelta(seconds=3)
SECRET = "whsec_8f3b2a1c9d7e6f5a4b3c2d1e"


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


def rejected(
    source: str, raw: bytes, headers: dict[str, str], keys: WebhookKeys, now: datetime = NOW
) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify(source, raw, headers, keys, now)
    return caught.value


# --- GoHighLevel Ed25519 ----------------------------------------------------------------------


def test_ghl_ed25519_signature_verifies(ed25519_key: Ed25519PrivateKey) -> None:
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])
    verify("ghl", GHL_BODY, {"x-ghl-signature": ed25519_sign(ed25519_key, GHL_BODY)}, keys, NOW)
    # header names are case-insensitive, and the key may be given as base64 of its raw 32 bytes
    raw = ed25519_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    keys = WebhookKeys.from_config(ghl_public_keys=[base64.b64encode(raw).decode()])
    verify("ghl", GHL_BODY, {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}, keys, NOW)


def test_ghl_tampered_body_is_401(ed25519_key: Ed25519PrivateKey) -> None:
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])
    signature = ed25519_sign(ed25519_key, GHL_BODY)
    tampered = GHL_BODY.replace(b'"value": 450', b'"value": 4500')
    error = rejected("ghl", tampered, {"X-GHL-Signature": signature}, keys)
    assert (error.status, error.reason) == (401, "bad_signature")
    assert error.message == "X-GHL-Signature does not verify against the configured Ed25519 key"
    assert signature not in error.message


def test_ghl_wrong_key_is_401_and_a_rotated_key_set_accepts(ed25519_key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    headers = {"X-GHL-Signature": ed25519_sign(other, GHL_BODY)}
    assert rejected("ghl", GHL_BODY, headers, WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])).status == 401
    verify("ghl", GHL_BODY, headers, WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key), pem(other)]), NOW)


@pytest.mark.parametrize(
    "value, what", [("not base64!", "not base64"), (base64.b64encode(b"x" * 63).decode(), "63 bytes")]
)
def test_ghl_malformed_signature_header(ed25519_key: Ed25519PrivateKey, value: str, what: str) -> None:
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])
    error = rejected("ghl", GHL_BODY, {"X-GHL-Signature": value}, keys)
    assert error.status == 401 and what in error.message


def test_ghl_missing_signature_names_the_expected_header(
    ed25519_key: Ed25519PrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)], allow_unsigned_ghl=True)
    error = rejected("ghl", GHL_BODY, {}, keys)  # opting in to unsigned does not apply once a key is configured
    assert (error.status, error.reason) == (401, "missing_signature")
    assert error.message == "GoHighLevel webhook without an X-GHL-Signature header"
    both = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_legacy_rsa_public_keys=[pem(rsa_key)])
    assert "X-GHL-Signature or X-WH-Signature" in rejected("ghl", GHL_BODY, {}, both).message


def test_ghl_legacy_header_is_not_enough_when_only_ed25519_is_configured(
    ed25519_key: Ed25519PrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])
    error = rejected("ghl", GHL_BODY, {"X-WH-Signature": rsa_sign(rsa_key, GHL_BODY)}, keys)
    assert error.reason == "missing_signature"


# --- GoHighLevel legacy RSA -------------------------------------------------------------------


def test_ghl_legacy_rsa_signature(rsa_key: rsa.RSAPrivateKey, ed25519_key: Ed25519PrivateKey) -> None:
    keys = WebhookKeys.from_config(ghl_legacy_rsa_public_keys=[pem(rsa_key)])
    verify("ghl", GHL_BODY, {"X-WH-Signature": rsa_sign(rsa_key, GHL_BODY)}, keys, NOW)
    error = rejected("ghl", GHL_BODY + b" ", {"X-WH-Signature": rsa_sign(rsa_key, GHL_BODY)}, keys)
    assert error.message == "X-WH-Signature does not verify against the configured RSA key"
    wrong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert rejected("ghl", GHL_BODY, {"X-WH-Signature": rsa_sign(wrong, GHL_BODY)}, keys).status == 401
    # with both keys configured and both headers sent, Ed25519 decides
    both = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_legacy_rsa_public_keys=[pem(rsa_key)])
    headers = {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY), "X-WH-Signature": rsa_sign(wrong, GHL_BODY)}
    verify("ghl", GHL_BODY, headers, both, NOW)
    headers = {
        "X-GHL-Signature": ed25519_sign(Ed25519PrivateKey.generate(), GHL_BODY),
        "X-WH-Signature": rsa_sign(rsa_key, GHL_BODY),
    }
    assert rejected("ghl", GHL_BODY, headers, both).reason == "bad_signature"


# --- GoHighLevel unsigned, location, freshness -------------------------------------------------


def test_ghl_without_keys_refuses_unsigned_unless_opted_in() -> None:
    error = rejected("ghl", GHL_BODY, {}, WebhookKeys())
    assert (error.status, error.reason) == (401, "unsigned_not_allowed")
    assert "no GoHighLevel public key is configured" in error.message and "forge" in error.message
    verify("ghl", GHL_BODY, {}, WebhookKeys(allow_unsigned_ghl=True), NOW)


def test_ghl_location_must_be_the_environments(ed25519_key: Ed25519PrivateKey) -> None:
    headers = {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_location_ids=["ve9EPM428h8vShlRW1KT"])
    verify("ghl", GHL_BODY, headers, keys, NOW)
    elsewhere = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)], ghl_location_ids=["OtherLocation0000001"])
    error = rejected("ghl", GHL_BODY, headers, elsewhere)
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
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])
    error = rejected("ghl", GHL_BODY, {"X-GHL-Signature": ed25519_sign(ed25519_key, GHL_BODY)}, keys, now)
    assert (error.status, error.reason, error.message) == (401, "stale", message)


def test_ghl_tolerance_is_configurable_and_applies_to_unsigned_too() -> None:
    keys = WebhookKeys(allow_unsigned_ghl=True, tolerance=timedelta(hours=1))
    verify("ghl", GHL_BODY, {}, keys, GHL_SENT + timedelta(minutes=59))
    assert rejected("ghl", GHL_BODY, {}, keys, GHL_SENT + timedelta(minutes=61)).reason == "stale"
    assert (
        rejected("ghl", GHL_BODY, {}, WebhookKeys(allow_unsigned_ghl=True), GHL_SENT + timedelta(minutes=6)).reason
        == "stale"
    )


def test_ghl_epoch_millisecond_timestamps() -> None:
    raw = dumps({**data("ghl_contact_create"), "timestamp": int(GHL_SENT.timestamp() * 1000)})
    verify("ghl", raw, {}, WebhookKeys(allow_unsigned_ghl=True), NOW)


def test_ghl_without_timestamp_is_400() -> None:
    payload = data("ghl_contact_create")
    del payload["timestamp"]
    error = rejected("ghl", dumps(payload), {}, WebhookKeys(allow_unsigned_ghl=True))
    assert error.status == 400 and "field 'timestamp' is missing" in error.message


def test_ghl_signature_is_checked_before_the_body_is_parsed(ed25519_key: Ed25519PrivateKey) -> None:
    keys = WebhookKeys.from_config(ghl_public_keys=[pem(ed25519_key)])
    assert (
        rejected(
            "ghl", b"{not json", {"X-GHL-Signature": ed25519_sign(Ed25519PrivateKey.generate(), b"{")}, keys
        ).status
        == 401
    )
    assert rejected("ghl", b"{not json", {}, WebhookKeys(allow_unsigned_ghl=True)).status == 400


# --- HMAC: generic and salesforce-cdc ------------------------------------------------------------


@pytest.mark.parametrize(
    "source, fixture", [("generic", "generic_contact_insert"), ("salesforce-cdc", "sfdc_contact_create")]
)
def test_hmac_signature(source: str, fixture: str) -> None:
    raw = body(fixture)
    t = int(NOW.timestamp())
    keys = WebhookKeys.from_config(generic_secrets=[SECRET], salesforce_cdc_secrets=[SECRET])
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    assert sign_hmac(raw, SECRET, t) == f"t={t},v1={expected}"
    verify(source, raw, {"X-Circuit-Signature": sign_hmac(raw, SECRET, t)}, keys, NOW)
    error = rejected(source, raw.replace(b"Priya", b"Pria"), {"x-circuit-signature": sign_hmac(raw, SECRET, t)}, keys)
    assert (error.status, error.reason) == (401, "bad_signature")
    assert error.message == "X-Circuit-Signature does not match the body with any configured secret"


def test_hmac_test_vector_in_the_readme() -> None:
    header = "t=1785767715,v1=d91a05f1b1b6d0d172fc012eb8bf71386197ec57814c02a3f2f8ca9441541e3d"
    assert sign_hmac(body("generic_contact_insert"), SECRET, 1785767715) == header
    readme = (Path(__file__).parents[2] / "host" / "circuit_host" / "webhooks" / "README.md").read_text()
    assert header in readme


def test_hmac_secrets_are_per_source() -> None:
    raw = body("generic_contact_insert")
    t = int(NOW.timestamp())
    keys = WebhookKeys.from_config(generic_secrets=[SECRET], salesforce_cdc_secrets=["another-secret-of-enough-length"])
    verify("generic", raw, {"X-Circuit-Signature": sign_hmac(raw, SECRET, t)}, keys, NOW)
    assert rejected("salesforce-cdc", raw, {"X-Circuit-Signature": sign_hmac(raw, SECRET, t)}, keys).status == 401


def test_hmac_rotation_several_v1_values_and_several_secrets() -> None:
    raw = body("generic_contact_insert")
    t = int(NOW.timestamp())
    old_secret, new_secret = SECRET, "whsec_rotated_0123456789abcdef"
    old_v1 = sign_hmac(raw, old_secret, t).split("v1=")[1]
    new_v1 = sign_hmac(raw, new_secret, t).split("v1=")[1]
    header = f"t={t},v1={new_v1},v1={old_v1},v0=ignored"
    verify("generic", raw, {"X-Circuit-Signature": header}, WebhookKeys.from_config(generic_secrets=[old_secret]), NOW)
    verify("generic", raw, {"X-Circuit-Signature": header}, WebhookKeys.from_config(generic_secrets=[new_secret]), NOW)
    only_new = f"t={t},v1={new_v1}"
    verify(
        "generic",
        raw,
        {"X-Circuit-Signature": only_new},
        WebhookKeys.from_config(generic_secrets=[old_secret, new_secret]),
        NOW,
    )
    assert (
        rejected(
            "generic", raw, {"X-Circuit-Signature": only_new}, WebhookKeys.from_config(generic_secrets=[old_secret])
        ).status
        == 401
    )


def test_hmac_timestamp_is_signed() -> None:
    raw = body("generic_contact_insert")
    t = int(NOW.timestamp())
    v1 = sign_hmac(raw, SECRET, t - 600).split("v1=")[1]
    keys = WebhookKeys.from_config(generic_secrets=[SECRET])
    assert rejected("generic", raw, {"X-Circuit-Signature": f"t={t},v1={v1}"}, keys).reason == "bad_signature"


@pytest.mark.parametrize(
    "offset, message",
    [
        (-301, "X-Circuit-Signature timestamp is 301 s old"),
        (301, "X-Circuit-Signature timestamp is 301 s in the future"),
    ],
)
def test_hmac_stale_and_future(offset: int, message: str) -> None:
    raw = body("generic_contact_insert")
    t = int(NOW.timestamp()) + offset
    keys = WebhookKeys.from_config(generic_secrets=[SECRET])
    error = rejected("generic", raw, {"X-Circuit-Signature": sign_hmac(raw, SECRET, t)}, keys)
    assert (error.status, error.reason) == (401, "stale") and message in error.message


@pytest.mark.parametrize(
    "value, reason, message",
    [
        (None, "missing_signature", "generic webhook without an X-Circuit-Signature header"),
        ("garbage", "bad_signature", "X-Circuit-Signature is malformed"),
        ("t=1785767715", "missing_signature", "has no v1 signature"),
        ("v1=" + "a" * 64, "bad_signature", "needs exactly one t=<unix seconds>"),
        ("t=1,t=2,v1=" + "a" * 64, "bad_signature", "needs exactly one t=<unix seconds>"),
        ("t=-5,v1=" + "a" * 64, "bad_signature", "needs exactly one t=<unix seconds>"),
        ("t=1785767715,v1=abc", "bad_signature", "a v1 value must be 64 hex digits"),
    ],
)
def test_hmac_header_problems(value: str | None, reason: str, message: str) -> None:
    headers = {} if value is None else {"X-Circuit-Signature": value}
    error = rejected(
        "generic", body("generic_contact_insert"), headers, WebhookKeys.from_config(generic_secrets=[SECRET])
    )
    assert (error.status, error.reason) == (401, reason)
    assert message in error.message


def test_hmac_without_a_configured_secret_is_401() -> None:
    raw = body("generic_contact_insert")
    error = rejected(
        "generic", raw, {"X-Circuit-Signature": sign_hmac(raw, SECRET, int(NOW.timestamp()))}, WebhookKeys()
    )
    assert error.status == 401 and "no signing secret is configured for generic webhooks" in error.message


# --- configuration ------------------------------------------------------------------------------


def test_key_configuration_errors_are_precise(rsa_key: rsa.RSAPrivateKey, ed25519_key: Ed25519PrivateKey) -> None:
    with pytest.raises(Rejected, match=r"ghl_public_keys\[0\]: expected an Ed25519 public key, got .*RSAPublicKey"):
        WebhookKeys.from_config(ghl_public_keys=[pem(rsa_key)])
    with pytest.raises(Rejected, match=r"ghl_public_keys\[0\]: not PEM and not base64"):
        WebhookKeys.from_config(ghl_public_keys=["hello world!"])
    with pytest.raises(Rejected, match=r"ghl_public_keys\[0\]: not an Ed25519 public key"):
        WebhookKeys.from_config(ghl_public_keys=[base64.b64encode(b"x" * 31).decode()])
    with pytest.raises(Rejected, match=r"ghl_legacy_rsa_public_keys\[0\]: expected an RSA public key"):
        WebhookKeys.from_config(ghl_legacy_rsa_public_keys=[pem(ed25519_key)])
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(Rejected, match="RSA key of 1024 bits, under the minimum of 2048"):
        parse_rsa_public_key(pem(small))
    with pytest.raises(Rejected, match=r"generic_secrets\[1\]: a signing secret must be at least 16 bytes"):
        WebhookKeys.from_config(generic_secrets=[SECRET, "short"])
    with pytest.raises(Rejected, match="tolerance must be positive"):
        WebhookKeys.from_config(tolerance=timedelta(0))


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
        verify("generic", b"{}", {}, WebhookKeys(), datetime(2026, 1, 1))


def test_unknown_source_is_404() -> None:
    assert rejected("zapier", b"{}", {}, WebhookKeys()).status == 404

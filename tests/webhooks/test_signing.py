"""Circuit Script's own HMAC scheme (X-Circuit-Signature), shared by the generic and salesforce-cdc sources."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from circuit_host.connectors.crm import crm_registry
from circuit_host.connectors.crm.generic import GENERIC
from circuit_host.connectors.crm.salesforce import SALESFORCE_CDC
from circuit_host.errors import Rejected
from circuit_host.webhooks import CircuitSecretSettings, HmacKeys, WebhookRejected, sign_hmac, verify_hmac

from .helpers import at, body

NOW = at("2026-08-03T14:35:15.402Z")
SECRET = "whsec_8f3b2a1c9d7e6f5a4b3c2d1e"


def verify(source: str, raw: bytes, headers: dict[str, str], keys: HmacKeys, now: datetime = NOW) -> None:
    verify_hmac(raw, headers, keys, now, source)


def rejected(source: str, raw: bytes, headers: dict[str, str], keys: HmacKeys, now: datetime = NOW) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify(source, raw, headers, keys, now)
    return caught.value


# --- HMAC: generic and salesforce-cdc ------------------------------------------------------------


@pytest.mark.parametrize(
    "source, fixture", [("generic", "generic_contact_insert"), ("salesforce-cdc", "sfdc_contact_create")]
)
def test_hmac_signature(source: str, fixture: str) -> None:
    raw = body(fixture)
    t = int(NOW.timestamp())
    keys = HmacKeys.from_config(secrets=[SECRET])
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


@pytest.mark.parametrize(
    "source, fixture", [(GENERIC.source, "generic_contact_insert"), (SALESFORCE_CDC.source, "sfdc_contact_create")]
)
def test_hmac_sources_verify_with_the_tenants_circuit_secret(source: str, fixture: str) -> None:
    plugin = crm_registry.plugin_for(source)
    raw = body(fixture)
    headers = {"X-Circuit-Signature": sign_hmac(raw, SECRET, int(NOW.timestamp()))}
    plugin.verify(raw, headers, CircuitSecretSettings(generic_hmac_secret=SecretStr(SECRET)), NOW)
    other = CircuitSecretSettings(generic_hmac_secret=SecretStr("another-secret-of-enough-length"))
    with pytest.raises(WebhookRejected) as caught:
        plugin.verify(raw, headers, other, NOW)
    assert caught.value.status == 401
    with pytest.raises(WebhookRejected, match=f"no signing secret is configured for {source} webhooks"):
        plugin.verify(raw, headers, CircuitSecretSettings(), NOW)


def test_hmac_rotation_several_v1_values_and_several_secrets() -> None:
    raw = body("generic_contact_insert")
    t = int(NOW.timestamp())
    old_secret, new_secret = SECRET, "whsec_rotated_0123456789abcdef"
    old_v1 = sign_hmac(raw, old_secret, t).split("v1=")[1]
    new_v1 = sign_hmac(raw, new_secret, t).split("v1=")[1]
    header = f"t={t},v1={new_v1},v1={old_v1},v0=ignored"
    verify("generic", raw, {"X-Circuit-Signature": header}, HmacKeys.from_config(secrets=[old_secret]), NOW)
    verify("generic", raw, {"X-Circuit-Signature": header}, HmacKeys.from_config(secrets=[new_secret]), NOW)
    only_new = f"t={t},v1={new_v1}"
    verify(
        "generic",
        raw,
        {"X-Circuit-Signature": only_new},
        HmacKeys.from_config(secrets=[old_secret, new_secret]),
        NOW,
    )
    assert (
        rejected("generic", raw, {"X-Circuit-Signature": only_new}, HmacKeys.from_config(secrets=[old_secret])).status
        == 401
    )


def test_hmac_timestamp_is_signed() -> None:
    raw = body("generic_contact_insert")
    t = int(NOW.timestamp())
    v1 = sign_hmac(raw, SECRET, t - 600).split("v1=")[1]
    keys = HmacKeys.from_config(secrets=[SECRET])
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
    keys = HmacKeys.from_config(secrets=[SECRET])
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
    error = rejected("generic", body("generic_contact_insert"), headers, HmacKeys.from_config(secrets=[SECRET]))
    assert (error.status, error.reason) == (401, reason)
    assert message in error.message


def test_hmac_without_a_configured_secret_is_401() -> None:
    raw = body("generic_contact_insert")
    error = rejected("generic", raw, {"X-Circuit-Signature": sign_hmac(raw, SECRET, int(NOW.timestamp()))}, HmacKeys())
    assert error.status == 401 and "no signing secret is configured for generic webhooks" in error.message


# --- configuration ------------------------------------------------------------------------------


def test_secret_configuration_errors_are_precise() -> None:
    with pytest.raises(Rejected, match=r"secrets\[1\]: a signing secret must be at least 16 bytes"):
        HmacKeys.from_config(secrets=[SECRET, "short"])
    with pytest.raises(Rejected, match="tolerance must be positive"):
        HmacKeys.from_config(tolerance=timedelta(0))


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify("generic", b"{}", {}, HmacKeys(), datetime(2026, 1, 1))

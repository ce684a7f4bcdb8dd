"""Body limits and strict JSON, shared by every source."""

from __future__ import annotations

import pytest

from circuit_host.connectors.crm import crm_registry
from circuit_host.webhooks import BodyLimits, WebhookRejected, parse_json

from .helpers import normalize


@pytest.mark.parametrize("source", crm_registry.sources())
def test_malformed_json_is_400_with_the_position(source: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize(source, b'{"type": "ContactCreate",\n  "id": }', "application/json")
    assert (caught.value.status, caught.value.reason) == (400, "malformed")
    assert caught.value.message == "invalid JSON at line 2 column 9 (char 34): Expecting value"


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "body is empty"),
        (b"  \n", "body is empty"),
        (b'{"a": "\xff"}', "body is not UTF-8: invalid byte at offset 7"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"a": 1} trailing', "Extra data"),
    ],
)
def test_strict_json(raw: bytes, message: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_json(raw)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_depth_limit() -> None:
    assert parse_json(b'{"a": [[1]]}', BodyLimits(max_depth=3)) == {"a": [[1]]}
    with pytest.raises(WebhookRejected, match="JSON nested 4 levels deep, over the limit of 3"):
        parse_json(b'{"a": [[[1]]]}', BodyLimits(max_depth=3))


def test_very_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_json(b"[" * 100_000 + b"]" * 100_000, BodyLimits(max_bytes=1_000_000))
    assert caught.value.status == 400 and "nested" in caught.value.message


def test_size_limit_is_413() -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize("generic", b" " * 2049, None, limits=BodyLimits(max_bytes=2048))
    assert (caught.value.status, caught.value.reason) == (413, "too_large")
    assert "2049 bytes, over the 2048-byte limit" in caught.value.message


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_non_json_content_types_are_415(content_type: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize("generic", b"{}", content_type)
    assert (caught.value.status, caught.value.reason) == (415, "unsupported_media_type")


def test_unknown_source_is_404() -> None:
    with pytest.raises(WebhookRejected) as caught:
        crm_registry.plugin_for("hubspot")
    assert caught.value.status == 404
    assert "known: ghl, salesforce-cdc, generic" in caught.value.message
